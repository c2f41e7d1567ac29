import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { attack } from '../../../../tensor/attacks';
import type { AttackOptions } from '../../../../tensor/attacks';
import { initBackend } from '../../../../tensor/backend';
import { crossEntropy } from '../../../../tensor/losses';
import { logitsFunction } from '../../../../tensor/models/logits';
import { buildReferenceCnn } from '../../../../tensor/models/reference-cnn';
import { openDataParallel, shardBounds } from '../../../../bench/parallel';
import type { DataParallelPool } from '../../../../bench/parallel';

/**
 * The data-parallel pool against the same computation on the main thread: with 2 workers and 15 images the
 * shards hold 8 and 7 images, so an unweighted mean of the shard gradients, a wrong shard, stale weights in a
 * worker or a different loss all show up as a difference far above float noise.
 */

const BATCH = 15;
/** A deterministic attack (no random start): per-example, so shards must reproduce the full batch's result. */
const PGD: AttackOptions = { norm: 'linf', eps: 0.1, stepSize: 0.025, steps: 3, randomStart: false };

/** OS threads of this process (Linux), or undefined elsewhere. */
const osThreads = () => (existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : undefined);

let reference: tf.LayersModel;
let master: tf.LayersModel;
let pool: DataParallelPool;
let x: tf.Tensor4D;
let y: tf.Tensor1D;
let threadsBefore: number | undefined;

/** Full-batch loss and gradients of `model` on the main thread, as plain arrays. */
async function fullBatch(model: tf.LayersModel, input: tf.Tensor4D) {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const forward = logitsFunction(model, { training: true });
  const { value, grads } = tf.variableGrads(() => crossEntropy(forward(input), y), vars);
  const out = { loss: (await value.data())[0], grads: await Promise.all(vars.map((v) => grads[v.name].data())) };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

/** Every value of `got` within `rel` × (largest |value| of `want`) of `want`. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rel = 1e-4) {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1e-12;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= rel * scale)) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]} (|Δ| ${d}, scale ${scale})`);
  }
}

async function weightsOf(model: tf.LayersModel) {
  return Promise.all(model.trainableWeights.map((w) => w.read().data()));
}

before(async () => {
  await initBackend('wasm', { log: () => {} });
  await stat('.'); // libuv starts its thread pool on first use: before the count, not during the test
  threadsBefore = osThreads();
  reference = buildReferenceCnn({ seed: 7 });
  master = buildReferenceCnn({ seed: 8 });
  master.setWeights(reference.getWeights());
  x = tf.randomUniform([BATCH, 28, 28, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
  y = tf.randomUniform([BATCH], 0, 10, 'int32', 12) as tf.Tensor1D;
  pool = await openDataParallel(master, { workers: 2 });
});

after(async () => {
  await pool?.close();
  tf.dispose([x, y]);
  reference?.dispose();
  master?.dispose();
});

describe('data-parallel pool (2 wasm worker threads)', () => {
  it('cuts the batch into contiguous shards, larger first, none empty', () => {
    assert.deepEqual(shardBounds(15, 2), [
      [0, 8],
      [8, 15],
    ]);
    assert.deepEqual(shardBounds(2, 3), [
      [0, 1],
      [1, 2],
    ]);
  });

  it('averages the shard gradients by shard size into the full-batch gradient', async () => {
    const want = await fullBatch(reference, x);
    const before = tf.memory().numTensors;
    const { grads, loss } = await pool.gradients(x, y);
    const got = await Promise.all(grads.map((g) => g.data()));
    tf.dispose(grads);
    assert.equal(tf.memory().numTensors, before, 'tensors left on the main thread');
    assert.ok(Math.abs(loss - want.loss) <= 1e-5 * want.loss, `loss ${loss} vs ${want.loss}`);
    got.forEach((g, i) => assertClose(g, want.grads[i], `gradient ${reference.trainableWeights[i].name}`));
  });

  it('takes the same SGD step as one thread on the full batch, and the workers then use the new weights', async () => {
    const sgd = tf.train.sgd(0.5);
    const refSgd = tf.train.sgd(0.5);
    try {
      const before = tf.memory().numTensors;
      const loss = await pool.trainStep(x, y, sgd);
      assert.equal(tf.memory().numTensors, before, 'tensors left on the main thread');

      const want = await fullBatch(reference, x);
      assert.ok(Math.abs(loss - want.loss) <= 1e-5 * want.loss, `loss ${loss} vs ${want.loss}`);
      const vars = reference.trainableWeights.map((w) => w.read() as tf.Variable);
      tf.tidy(() =>
        refSgd.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(want.grads[i], v.shape) }))),
      );
      const [got, expected] = [await weightsOf(master), await weightsOf(reference)];
      got.forEach((w, i) => assertClose(w, expected[i], `weight ${reference.trainableWeights[i].name} after the step`));

      // After the step the workers must compute on the updated weights.
      const next = await fullBatch(reference, x);
      assert.ok(next.loss < want.loss, `the step should lower the loss: ${next.loss} ≥ ${want.loss}`);
      const { grads, loss: nextLoss } = await pool.gradients(x, y);
      const nextGot = await Promise.all(grads.map((g) => g.data()));
      tf.dispose(grads);
      assert.ok(Math.abs(nextLoss - next.loss) <= 1e-5 * next.loss, `loss after the step ${nextLoss} vs ${next.loss}`);
      nextGot.forEach((g, i) => assertClose(g, next.grads[i], `gradient after the step ${i}`));
    } finally {
      sgd.dispose();
      refSgd.dispose();
    }
  });

  it('attacks each shard like attack() on the full batch: gradients and predictions', async () => {
    // After the step above the two models' weights agree only to rounding (shards sum in another order), and a
    // sign step amplifies that; the attack is compared on bitwise-identical weights.
    reference.setWeights(master.getWeights());
    await pool.syncWeights();
    const adv = attack(reference, x, y, PGD);
    const want = await fullBatch(reference, adv);
    const wantPred = tf.tidy(() => tf.argMax(reference.apply(adv) as tf.Tensor, 1).dataSync());
    adv.dispose();
    const clean = await fullBatch(reference, x);
    assert.ok(want.loss > clean.loss, `PGD should raise the loss: ${want.loss} ≤ ${clean.loss}`);

    const before = tf.memory().numTensors;
    const { grads, loss } = await pool.gradients(x, y, PGD);
    const got = await Promise.all(grads.map((g) => g.data()));
    tf.dispose(grads);
    const pred = await pool.predict(x, y, PGD);
    assert.equal(tf.memory().numTensors, before, 'tensors left on the main thread');
    assert.ok(Math.abs(loss - want.loss) <= 1e-4 * want.loss, `adversarial loss ${loss} vs ${want.loss}`);
    got.forEach((g, i) => assertClose(g, want.grads[i], `adversarial gradient ${i}`));
    assert.deepEqual(Array.from(pred), Array.from(wantPred));
  });

  it('close() ends every worker thread', async () => {
    const ids = pool.threadIds;
    assert.equal(ids.length, 2);
    assert.ok(
      ids.every((id) => id > 0),
      `running workers have thread ids, got ${ids}`,
    );
    await pool.close();
    assert.deepEqual(pool.threadIds, [-1, -1], 'a worker thread is still running');
    if (threadsBefore !== undefined) assert.equal(osThreads(), threadsBefore, 'OS threads left behind');
    await assert.rejects(pool.gradients(x, y), /closed/);
  });
});
