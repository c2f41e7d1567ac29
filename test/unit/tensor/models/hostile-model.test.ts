// Model files are read with checks: a link to /dev/zero, a FIFO, a link out of the folder, and a tiny
// model.json whose topology would allocate hundreds of MB are refused, quickly, naming the file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ModelFileError, buildReferenceCnn, loadModel, loadModelFromBytes, saveModel } from '../../../../tensor/models';
import { MAX_MODEL_PARAMS } from '../../../../tensor/models/budget';

describe('hostile model folders', () => {
  let dir: string;
  let n = 0;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'tempered-hostile-model-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  async function saved(): Promise<string> {
    const d = join(dir, `m${n++}`);
    const model = buildReferenceCnn({ seed: 1 });
    await saveModel(model, d);
    model.dispose();
    return d;
  }

  const refused = async (d: string, pattern: RegExp) => {
    const started = Date.now();
    await assert.rejects(loadModel(d), (err: unknown) => err instanceof ModelFileError && pattern.test(err.message));
    assert.ok(Date.now() - started < 5_000, 'refused quickly');
  };

  it('a weights.bin linked to /dev/zero is refused', async () => {
    const d = await saved();
    await unlink(join(d, 'weights.bin'));
    await symlink('/dev/zero', join(d, 'weights.bin'));
    await refused(d, /weights\.bin: links outside the model folder/);
  });

  it('a weights.bin that is a FIFO is refused without hanging', async () => {
    const d = await saved();
    await unlink(join(d, 'weights.bin'));
    execFileSync('mkfifo', [join(d, 'weights.bin')]);
    await refused(d, /weights\.bin: is not a regular file/);
  });

  it('a model.json linked to a file outside is refused', async () => {
    const d = await saved();
    const outside = join(dir, `outside-${n++}.json`);
    await writeFile(outside, await readFile(join(d, 'model.json')));
    await unlink(join(d, 'model.json'));
    await symlink(outside, join(d, 'model.json'));
    await refused(d, /model\.json: links outside/);
  });

  it('a 3 KB model.json with a huge Dense layer is refused before building', async () => {
    const d = await saved();
    const json = JSON.parse(await readFile(join(d, 'model.json'), 'utf8'));
    const dense = json.modelTopology.config.layers.find((l: { class_name: string }) => l.class_name === 'Dense');
    dense.config.units = 100_000; // 1600 × 100000 = 160M parameters, 640 MB
    const text = JSON.stringify(json);
    assert.ok(text.length < 10_000);
    await writeFile(join(d, 'model.json'), text);
    const tensors = tf.memory().numBytes;
    await refused(d, /model\.json: its topology has \d+ parameters, over the budget of 50000000/);
    assert.equal(tf.memory().numBytes, tensors, 'nothing was allocated');
    await assert.rejects(
      loadModelFromBytes({ 'model.json': new TextEncoder().encode(text), 'weights.bin': new Uint8Array(0) }),
      /over the budget/,
    );
    assert.ok(MAX_MODEL_PARAMS >= 10_000_000);
  });

  it('an honest model still loads', async () => {
    const m = await loadModel(await saved());
    assert.equal(m.countParams(), 225_034);
    m.dispose();
  });
});
