// Specs that validate but could never run, or that a careless or hostile author could use to exhaust a worker or
// leak a secret: each is refused at validation, naming the field or the file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_SPEC_BYTES, SpecFileError, loadSpec, parseSpecText } from '../../../schemas/load';
import { safeParseSpec } from '../../../schemas/spec';

const errorsOf = (input: unknown): string => {
  const r = safeParseSpec(input);
  return r.success ? '' : JSON.stringify(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
};

describe('spec fields a run could never survive', () => {
  for (const [field, spec, pattern] of [
    [
      'a URL with user:password@',
      { dataset: { source: 'https://me:hunter2@data.example/fmnist/' } },
      /dataset\.source: expected a URL without user:password@/,
    ],
    ['a URL with a user only', { dataset: { source: 'http://token@data.example/x/' } }, /dataset\.source/],
    [
      'artifacts.prefix with ..',
      { artifacts: { prefix: '../..' } },
      /artifacts\.prefix: expected no \. or \.\. segments/,
    ],
    ['artifacts.prefix with a . segment', { artifacts: { prefix: 'models/./x' } }, /artifacts\.prefix/],
    [
      'a zero training timeout',
      { compute: { trainingTimeout: '0s' } },
      /compute\.trainingTimeout: expected a duration above zero/,
    ],
    ['a zero heartbeat timeout', { compute: { heartbeatTimeout: '0.0 minutes' } }, /compute\.heartbeatTimeout/],
    [
      'an unbounded attack eps',
      { evaluation: { attacks: [{ name: 'pgd', eps: 1e300 }] } },
      /evaluation\.attacks\.0\.eps/,
    ],
    ['a 1.5 MB description', { description: 'x'.repeat(1_500_000) }, /description/],
    ['an overlong queue name', { compute: { ioQueue: 'q'.repeat(500) } }, /compute\.ioQueue/],
  ] as const) {
    it(`refuses ${field}`, () => {
      assert.match(errorsOf({ version: 1, ...spec }), pattern);
    });
  }

  it('still accepts the ordinary forms', () => {
    for (const spec of [
      { dataset: { source: 'https://data.example/fmnist/' } },
      { artifacts: { prefix: 'team.a/models' } },
      { compute: { trainingTimeout: '90s', heartbeatTimeout: '0.5 minutes' } },
      { evaluation: { attacks: [{ name: 'pgd', eps: 0.3 }] } },
    ]) {
      assert.equal(errorsOf({ version: 1, ...spec }), '', JSON.stringify(spec));
    }
  });
});

describe('spec files', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'tempered-hostile-spec-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it('a duplicate key in JSON is refused, naming the key (JSON.parse keeps the last silently)', () => {
    const text = '{"version": 1, "training": {"epochs": 1, "epochs": 50}}';
    assert.throws(
      () => parseSpecText(text, 'spec.json'),
      (err: Error) => {
        assert.ok(err instanceof SpecFileError);
        assert.match(err.message, /^spec\.json: duplicate key "epochs" at line 1, column \d+/);
        return true;
      },
    );
  });

  it('a duplicate key in YAML is refused, naming the key', () => {
    assert.throws(
      () => parseSpecText('version: 1\ntraining:\n  epochs: 1\n  epochs: 2\n', 'spec.yaml'),
      /duplicate key "epochs" at line 4/,
    );
  });

  for (const ext of ['json', 'yaml']) {
    it(`very deep ${ext} is a clear error, not a crash`, () => {
      const deep = `{"version": 1, "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
      assert.throws(() => parseSpecText(deep, `deep.${ext}`), /nested 100001 levels deep; a spec nests at most 32/);
    });
  }

  it('a spec file over the size limit is refused before it is read', async () => {
    const file = join(dir, 'big.yaml');
    await writeFile(file, `version: 1\ndescription: ${'x'.repeat(MAX_SPEC_BYTES)}\n`);
    await assert.rejects(
      loadSpec(file),
      new RegExp(`big\\.yaml: \\d+ bytes; a spec may have at most ${MAX_SPEC_BYTES}`),
    );
  });

  it('quoted brackets do not count as nesting', () => {
    assert.deepEqual(
      parseSpecText('{"version": 1, "description": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 'a.json'),
      {
        version: 1,
        description: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
      },
    );
  });
});
