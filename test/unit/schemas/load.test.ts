/** Loading specs from YAML and JSON files: the file is named in every error. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SpecFileError, loadSpec, readSpecFile } from '../../../schemas/load';
import { SpecError } from '../../../schemas/spec';

let dir: string;
const file = async (name: string, text: string) => {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempered-spec-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadSpec', () => {
  test('reads YAML and JSON to the same spec', async () => {
    const yaml = await file('run.yaml', 'version: 1\ntraining:\n  epochs: 2\nepsilon:\n  max: 0.05\n');
    const json = await file(
      'run.json',
      JSON.stringify({ version: 1, training: { epochs: 2 }, epsilon: { max: 0.05 } }),
    );
    const a = await loadSpec(yaml);
    assert.equal(a.training.epochs, 2);
    assert.equal(a.evaluation.attacks[0].eps, 0.05);
    assert.deepEqual(await loadSpec(json), a);
  });

  test('bad YAML: the error names the file and the line', async () => {
    const path = await file('bad.yaml', 'version: 1\ntraining:\n  epochs: [2\n');
    await assert.rejects(loadSpec(path), (err: unknown) => {
      assert.ok(err instanceof SpecFileError);
      assert.equal(err.file, path);
      assert.match(err.message, new RegExp(`^${path}: not valid YAML: line \\d+, column \\d+: `));
      return true;
    });
  });

  test('duplicate YAML keys are an error, not a silent override', async () => {
    const path = await file('dup.yaml', 'version: 1\ntraining:\n  epochs: 2\n  epochs: 3\n');
    await assert.rejects(loadSpec(path), /dup\.yaml: duplicate key "epochs" at line 4, column 3/);
  });

  test('bad JSON and missing files name the file', async () => {
    const path = await file('bad.json', '{"version": 1,');
    await assert.rejects(
      loadSpec(path),
      (err: unknown) => err instanceof SpecFileError && err.message.startsWith(`${path}: not valid JSON: `),
    );
    await assert.rejects(readSpecFile(join(dir, 'nope.yaml')), /nope\.yaml: no such file/);
  });

  test('an invalid spec: SpecError with the file first and every problem', async () => {
    const path = await file('invalid.yaml', 'version: 1\ntraining:\n  epochs: -1\nepsilion: 0.3\n');
    await assert.rejects(loadSpec(path), (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.equal(err.origin, path);
      assert.deepEqual(err.lines, [
        'training.epochs: got -1, expected an integer >= 1',
        'epsilion: unknown key (did you mean epsilon?); allowed keys: $schema, version, description, dataset, model, attack, epsilon, training, evaluation, gate, artifacts, compute',
      ]);
      assert.ok(err.message.startsWith(`${path}: invalid spec\n  training.epochs`));
      return true;
    });
  });
});
