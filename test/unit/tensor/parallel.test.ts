import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../tensor/backend';
import { crossEntropy } from '../../../tensor/losses';
import { logitsFunction } from '../../../tensor/models/logits';
import { openDataParallel, threadsFor } from '../../../tensor/parallel';
import { workerExecArgv } from '../../../tensor/parallel/spawn';
import type { DataParallelPool } from '../../../tensor/parallel';
import { parseTrainingConfig } from '../../../tensor/training/config';
import type { TrainingConfigInput } from '../../../tensor/training/config';
import {
  combineShards,
  inProcessRunner,
  packWeights,
  shardBounds,
  shardJobs,
  unpackWeights,
} from '../../../tensor/training/shards';
import type { ShardResult } from '../../../tensor/training/shards';
import { Trainer } from '../../../tensor/training/trainer';
import { syntheticDataset } from './training/helpers';

/**
 * Data parallelism: the worker pool against the same shards run one after another on the main thread (the two
 * must agree bit for bit on wasm: the result of a run may depend on its shard count, never on its thread count),
 * and the shards' weighted mean against the full-batch gradient. The model has batch norm, whose statistics each
 * shard moves on its own: a worker that kept the previous shard's statistics, or a mean that forgot them, shows.
 */

const SIDE = 8;
const BATCH = 15;

/** OS threads of this process (Linux), or undefined elsewhere. */
const osThreads = () => (existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : undefined);

/** A tiny conv net with batch norm; seeded, so two builds are identical. */
function bnModel(seed = 3): tf.LayersModel {
  const m = tf.sequential();
  m.add(
    tf.layers.conv2d({
      inputShape: [SIDE, SIDE, 1],
      filters: 4,
      kernelSize: 3,
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }),
  );
  m.add(tf.layers.batchNormalization());
  m.add(tf.layers.activation({ activation: 'relu' }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
  return m;
}

const config = (over: Partial<TrainingConfigInput> = {}) =>
  parseTrainingConfig({
    epochs: 2,
    batchSize: BATCH,
    learningRate: 0.05,
    optimizer: 'sgd',
    momentum: 0.9,
    epsilon: { max: 0.1, kind: 'constant' },
    attack: { steps: 2 },
    ...over,
  } as TrainingConfigInput);

let model: tf.LayersModel;
let pool: DataParallelPool;
let x: tf.Tensor4D;
let y: tf.Tensor1D;
let threadsBefore: number | undefined;

function sameBits(a: ShardResult[], b: ShardResult[], what: string) {
  assert.equal(a.length, b.length, `${what}: shard count`);
  a.forEach((r, k) => {
    assert.equal(r.loss, b[k].loss, `${what}: loss of shard ${k}`);
    assert.deepEqual(r.grads, b[k].grads, `${what}: gradient of shard ${k}`);
    assert.deepEqual(r.stats, b[k].stats, `${what}: batch-norm statistics of shard ${k}`);
  });
}

before(async () => {
  await initBackend('wasm', { log: () => {} });
  await stat('.'); // libuv starts its thread pool on first use: before the count, not during the test
  threadsBefore = osThreads();
  model = bnModel();
  x = tf.randomUniform([BATCH, SIDE, SIDE, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
  y = tf.randomUniform([BATCH], 0, 3, 'int32', 12) as tf.Tensor1D;
  pool = await openDataParallel(model, { workers: 2 });
});

after(async () => {
  await pool?.close();
  tf.dispose([x, y]);
  model?.dispose();
});

describe('shards of a batch', () => {
  it('are contiguous, larger first, none empty', () => {
    assert.deepEqual(shardBounds(15, 2), [
      [0, 8],
      [8, 15],
    ]);
    assert.deepEqual(shardBounds(2, 3), [
      [0, 1],
      [1, 2],
    ]);
  });

  it('keep the batch seed for shard 0, draw others, and keep the clean examples that fall in them', () => {
    const jobs = shardJobs(15, 3, { eps: 0.1, seed: 42, clean: 7 });
    assert.deepEqual(
      jobs.map((j) => [j.start, j.end, j.clean]),
      [
        [0, 5, 5],
        [5, 10, 2],
        [10, 15, 0],
      ],
    );
    assert.equal(jobs[0].seed, 42);
    assert.equal(new Set(jobs.map((j) => j.seed)).size, 3, 'each shard its own attack noise');
  });
});

describe('data-parallel pool (2 wasm worker threads) as a shard runner', () => {
  it('gives the same bits as the shards run in turn on this thread, for 2 and for 3 shards', async () => {
    const c = config();
    const statsBefore = await packWeights(model.nonTrainableWeights);
    for (const shards of [2, 3]) {
      const jobs = shardJobs(BATCH, shards, { eps: 0.1, seed: 5, clean: 3 });
      const baseline = tf.memory().numTensors;
      const here = await inProcessRunner.run(model, x, y, c, jobs);
      unpackWeights(model.nonTrainableWeights, statsBefore);
      const there = await pool.run(model, x, y, c, jobs);
      assert.equal(tf.memory().numTensors, baseline, 'tensors left on the main thread');
      sameBits(there, here, `${shards} shards`);
      assert.notDeepEqual(here[0].stats, statsBefore, "a shard's training pass moves the batch-norm statistics");
      assert.notDeepEqual(here[0].stats, here[1].stats, 'each shard has its own statistics');
      // the pool ran against the master's weights as they were: it did not touch them
      assert.deepEqual(await packWeights(model.nonTrainableWeights), statsBefore);
    }
  });

  it("weights the shards' gradients by size into the full batch's (clean training, batch norm in inference)", async () => {
    // Without an attack and with the statistics frozen the loss is a plain mean over examples, so the weighted
    // mean of 8- and 7-image shards must equal the full-batch gradient; an unweighted mean would not.
    const plain = tf.sequential();
    plain.add(tf.layers.flatten({ inputShape: [SIDE, SIDE, 1] }));
    plain.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }) }));
    const small = await openDataParallel(plain, { workers: 2 });
    try {
      const c = config({ epsilon: undefined });
      const jobs = shardJobs(BATCH, 2, { eps: 0, seed: 1, clean: 0 });
      const got = combineShards(jobs, await small.run(plain, x, y, c, jobs));
      const vars = plain.trainableWeights.map((w) => w.read() as tf.Variable);
      const forward = logitsFunction(plain, { training: true });
      const { value, grads } = tf.variableGrads(() => crossEntropy(forward(x), y), vars);
      const packed = tf.concat(vars.map((v) => tf.reshape(grads[v.name], [-1])));
      const want = (await packed.data()) as Float32Array;
      const wantLoss = (await value.data())[0];
      tf.dispose([value, packed, ...Object.values(grads)]);
      assert.ok(Math.abs(got.loss - wantLoss) <= 1e-6 * wantLoss, `loss ${got.loss} vs ${wantLoss}`);
      const scale = Math.max(...want.map(Math.abs));
      want.forEach((w, i) =>
        assert.ok(Math.abs(got.grads[i] - w) <= 1e-5 * scale, `gradient ${i}: ${got.grads[i]} vs ${w}`),
      );
    } finally {
      await small.close();
      plain.dispose();
    }
  });
});

describe('Trainer with shards', () => {
  const data = syntheticDataset(45, { side: SIDE, seed: 4 });

  /** Final weights and optimizer steps of a run of `c`, stopped and resumed after `stopAfter` batches when given. */
  async function train(c: TrainingConfigInput, runner: 'pool' | 'here', stopAfter?: number) {
    const m = bnModel();
    let trainer = await Trainer.create({
      model: m,
      train: data,
      config: c,
      runner: runner === 'pool' ? pool : undefined,
    });
    try {
      let steps = 0;
      while (!trainer.done) {
        if (steps === stopAfter) {
          const bytes = await trainer.checkpoint();
          trainer.dispose();
          // resumed on the other runner: the thread count changes, the shard count comes from the checkpoint
          trainer = await Trainer.resume(bytes, {
            model: m,
            train: data,
            runner: runner === 'pool' ? undefined : pool,
          });
        }
        await trainer.step();
        steps++;
      }
      return { weights: await packWeights(m.weights), history: trainer.epochHistory.map((h) => h.meanLoss) };
    } finally {
      trainer.dispose();
      m.dispose();
    }
  }

  it('trains to the same bits on 2 threads as on one, and resumed across thread counts', async () => {
    const c = config({ shards: 2 });
    const baseline = tf.memory().numTensors;
    const onPool = await train(c, 'pool');
    const here = await train(c, 'here');
    const resumed = await train(c, 'here', 4);
    assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
    assert.deepEqual(onPool.weights, here.weights, '2 threads vs 1');
    assert.deepEqual(resumed.weights, onPool.weights, 'resumed on the pool after 4 batches in turn');
    assert.deepEqual(resumed.history, onPool.history);
    const whole = await train(config(), 'here');
    assert.notDeepEqual(whole.weights, here.weights, 'shards change the result (their own noise and statistics)');
  });
});

describe('worker threads', () => {
  it('under auto are the cores on wasm and cpu, one on TensorFlow (its own pools use them); a number is kept', () => {
    assert.equal(threadsFor('wasm', 'auto'), availableParallelism());
    assert.equal(threadsFor('cpu', 'auto'), availableParallelism());
    assert.equal(threadsFor('tensorflow', 'auto'), 1);
    assert.equal(threadsFor('tensorflow-gpu', 'auto'), 1);
    assert.equal(threadsFor('tensorflow', 2), 2);
    assert.equal(threadsFor('tensorflow-gpu', 3), 3);
    assert.equal(threadsFor('wasm', 'auto', 5), 5, "auto is the worker's cores when it names them");
    assert.equal(threadsFor('tensorflow', 'auto', 5), 1);
  });

  it("inherit the process's Node flags less its preloads, which would fail before the thread registers tsx", () => {
    assert.deepEqual(
      workerExecArgv(['--import', 'tsx', '--max-old-space-size=4096', '--import=./x.ts', '-r', 'y', '--no-warnings']),
      ['--max-old-space-size=4096', '--no-warnings'],
    );
  });
});

describe('closing the pool', () => {
  it('ends every worker thread', async () => {
    const ids = pool.threadIds;
    assert.equal(ids.length, 2);
    assert.ok(
      ids.every((id) => id > 0),
      `running workers have thread ids, got ${ids}`,
    );
    await pool.close();
    assert.deepEqual(pool.threadIds, [-1, -1], 'a worker thread is still running');
    if (threadsBefore !== undefined) assert.equal(osThreads(), threadsBefore, 'OS threads left behind');
    const jobs = shardJobs(BATCH, 2, { eps: 0, seed: 1, clean: 0 });
    await assert.rejects(pool.run(model, x, y, config(), jobs), /closed/);
  });
});
