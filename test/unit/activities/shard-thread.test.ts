import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { runPhases } from '../../../activities/evaluate-phases';
import type { ShardHeartbeat } from '../../../activities/evaluate-phases';
import { runPhasesOnThread } from '../../../activities/shard-thread';
import { parseSpec } from '../../../schemas/spec';
import { initBackend } from '../../../tensor/backend';
import type { SuiteShardResult } from '../../../tensor/eval/reduce';
import { syntheticDataset } from '../tensor/training/helpers';

/**
 * An evaluation shard on a thread of its own must give what the same shard gives on the main thread, bit for bit
 * on wasm (seeds derive from the spec, the phase, the attack and the batch, never from where it runs), report the
 * same resume states, resume from one, and leave no thread behind when cancelled or failed.
 */

const SIDE = 8;
const test = syntheticDataset(24, { side: SIDE, numClasses: 3, seed: 5 });
// Two phases (the fast suite, then PGD-5 alone), batches of 4 over images [6, 17): every phase has several batches.
const spec = parseSpec({
  version: 1,
  dataset: { source: '/nonexistent' },
  epsilon: { max: 0.1 },
  evaluation: { suite: 'fast', batchSize: 4, attacks: [{ name: 'pgd5', steps: 5, stepFraction: 0.25 }] },
});
const range = { start: 6, count: 11 };
const fresh: ShardHeartbeat = { phase: 0, done: [] };

const osThreads = () => (existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : undefined);
/** Results without their timings, which differ from run to run. */
const untimed = (done: SuiteShardResult[]) => done.map(({ seconds: _s, ...r }) => r);
/** The resume states reported, once each (throttled progress reports repeat the last one). */
const states = (beats: ShardHeartbeat[]) => [
  ...new Set(beats.map((b) => JSON.stringify({ phase: b.phase, state: b.state, done: b.done.length }))),
];

let model: tf.LayersModel;
let reference: { done: SuiteShardResult[]; beats: ShardHeartbeat[] };

before(async () => {
  await initBackend('wasm', { log: () => {} });
  // A model that gets most images right, so the attacks have robust points to work on.
  model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [SIDE, SIDE, 1] }),
      tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.05), loss: 'sparseCategoricalCrossentropy' });
  const x = tf.tensor4d(
    Float32Array.from(test.pixels!, (v) => v / 255),
    [test.count, SIDE, SIDE, 1],
  );
  const y = tf.tensor1d(test.labels, 'float32');
  await model.fit(x, y, { epochs: 20, verbose: 0 });
  tf.dispose([x, y]);
  const beats: ShardHeartbeat[] = [];
  const done = await runPhases(model, test, spec, range, fresh, { report: (b) => beats.push(b) });
  reference = { done, beats };
});

after(() => model.dispose());

describe('an evaluation shard on its own thread', () => {
  it('gives the same results and resume states as on this thread, and leaves no tensor or thread behind', async () => {
    assert.equal(reference.done.length, 2);
    assert.ok(
      reference.done[0].brokenBy.some((b) => b === -1),
      'some images survive the suite, so every attack ran on several batches',
    );
    const tensors = tf.memory().numTensors;
    const threads = osThreads();
    const beats: ShardHeartbeat[] = [];
    const done = await runPhasesOnThread(model, test, spec, range, fresh, {
      report: (b) => beats.push(b),
      backend: 'wasm',
    });
    assert.deepEqual(untimed(done), untimed(reference.done));
    assert.equal(done[0].start, range.start, 'image numbers stay the test split’s');
    assert.deepEqual(states(beats), states(reference.beats));
    assert.equal(tf.memory().numTensors, tensors);
    if (threads !== undefined) assert.equal(osThreads(), threads, 'the shard’s thread is still there');
  });

  it("resumes from a heartbeat of the main thread's run with the uninterrupted result", async () => {
    const mid = reference.beats.find((b) => b.phase === 0 && b.state?.attack === 1 && b.state.batch === 1);
    assert.ok(mid, 'a heartbeat inside the second attack of the suite');
    const done = await runPhasesOnThread(model, test, spec, range, mid, { report: () => {}, backend: 'wasm' });
    assert.deepEqual(untimed(done), untimed(reference.done));
  });

  it('is ended at once when cancelled, rejecting with the reason', async () => {
    const threads = osThreads();
    const abort = new AbortController();
    const reason = new Error('cancelled by the test');
    const run = runPhasesOnThread(model, test, spec, range, fresh, {
      report: () => abort.abort(reason),
      signal: abort.signal,
      backend: 'wasm',
    });
    await assert.rejects(run, (err) => err === reason);
    if (threads !== undefined) assert.equal(osThreads(), threads, 'the shard’s thread is still there');
  });

  it("passes the thread's error on, with its name and message", async () => {
    await assert.rejects(
      runPhasesOnThread(model, test, spec, { start: 20, count: 10 }, fresh, { report: () => {}, backend: 'wasm' }),
      /images \[20, 20\+10\) do not fit a dataset of 24/,
    );
  });
});
