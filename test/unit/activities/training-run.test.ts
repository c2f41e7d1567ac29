// runTraining (activities/training-run.ts) inside MockActivityEnvironment, on an in-memory store: checkpoints at
// the cursors the spec asks for, heartbeats that carry the checkpoint cursor, a cancellation that writes a last
// checkpoint, and a later execution that continues an earlier one's checkpoint (resume).
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../../../activities/deps';
import { runTraining } from '../../../activities/training-run';
import type { TrainingRunOptions, TrainingRunResult } from '../../../activities/training-run';
import { Failure } from '../../../schemas/failures';
import type { TrainProgress } from '../../../schemas/payloads';
import { syntheticDataset, tinyModel } from '../tensor/training/helpers';
import { memoryStore } from './helpers';

const train = syntheticDataset(48);
const config = { epochs: 2, batchSize: 8, learningRate: 0.01, epsilon: { max: 0.1 }, attack: { steps: 1 } };

function options(deps: ActivityDeps, prefix: string, extra: Partial<TrainingRunOptions> = {}): TrainingRunOptions {
  return {
    deps,
    model: tinyModel(),
    train,
    config,
    place: { bucket: 'b', prefix },
    checkpointEvery: 4,
    backend: 'cpu',
    threads: 1,
    workflowId: 'wf',
    temporalRunId: 'r1',
    reportProgress: true,
    ...extra,
  };
}

const cursors = (keys: Iterable<string>, prefix: string) =>
  [...keys]
    .filter((k) => k.startsWith(`b/${prefix}`))
    .map((k) => Number(/ckpt-(\d+)\.bin$/.exec(k)?.[1]))
    .sort((a, b) => a - b);

before(async () => {
  await tf.setBackend('cpu');
});

describe('runTraining in an activity', () => {
  test('checkpoints every 4 batches and at epoch ends; heartbeats and signals carry the checkpoint cursor', async () => {
    const store = memoryStore();
    const signals: TrainProgress[] = [];
    const deps: ActivityDeps = { store, cacheDir: '/none', signalProgress: async (_w, _r, p) => void signals.push(p) };
    const env = new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf', runId: 'r1' } });
    const beats: { progress: TrainProgress }[] = [];
    env.on('heartbeat', (d: { progress: TrainProgress }) => beats.push(d));
    const before = tf.memory().numTensors;
    const o = options(deps, 'p/');
    try {
      const r = (await env.run(runTraining, o)) as TrainingRunResult;
      assert.equal(r.batches, 12);
      assert.equal(r.resumedFrom, undefined);
    } finally {
      o.model.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    assert.deepEqual(cursors(store.objects.keys(), 'p/'), [0, 4, 6, 8, 12]);
    assert.equal(beats.at(-1)?.progress.checkpointCursor, 12);
    assert.deepEqual(
      signals.map((s) => s.checkpointCursor),
      [0, 4, 6, 8, 12],
      'a progress signal after every checkpoint',
    );
  });

  test('a cancelled attempt writes a last checkpoint; a later execution continues it', async () => {
    const store = memoryStore();
    const deps: ActivityDeps = { store, cacheDir: '/none' };
    const first = new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf', runId: 'r1' } });
    first.on('heartbeat', (d: { cursor: number }) => {
      if (d.cursor === 5) first.cancel();
    });
    const o1 = options(deps, 'r1/');
    try {
      await assert.rejects(first.run(runTraining, o1), CancelledFailure);
    } finally {
      o1.model.dispose();
    }
    assert.deepEqual(cursors(store.objects.keys(), 'r1/'), [0, 4, 5], 'a last checkpoint at the cancel');

    const second = new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf', runId: 'r2' } });
    const o2 = options(deps, 'r2/', { temporalRunId: 'r2', earlierPlaces: [{ bucket: 'b', prefix: 'r1/' }] });
    try {
      const r = (await second.run(runTraining, o2)) as TrainingRunResult;
      assert.equal(r.batches, 12);
      assert.equal(r.resumedFrom, 'r1/ckpt-000000005.bin');
      assert.equal(r.resumedAtBatch, 5);
    } finally {
      o2.model.dispose();
    }
    assert.deepEqual(cursors(store.objects.keys(), 'r2/'), [6, 8, 12], 'continued, not started over');
  });

  test("under compute.threads auto a run keeps the shard count it started with; a fixed count refuses another's", async () => {
    const store = memoryStore();
    const deps: ActivityDeps = { store, cacheDir: '/none' };
    const first = new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf', runId: 'r1' } });
    first.on('heartbeat', (d: { cursor: number }) => {
      if (d.cursor === 5) first.cancel();
    });
    const o1 = options(deps, 't1/', { threads: 3 });
    try {
      await assert.rejects(first.run(runTraining, o1), CancelledFailure);
    } finally {
      o1.model.dispose();
    }
    const resume = async (runId: string, threads: number | 'auto') => {
      const env = new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf', runId } });
      const o = options(deps, `${runId}/`, {
        temporalRunId: runId,
        threads,
        earlierPlaces: [{ bucket: 'b', prefix: 't1/' }],
      });
      try {
        return (await env.run(runTraining, o)) as TrainingRunResult;
      } finally {
        o.model.dispose();
      }
    };
    const before = tf.memory().numTensors;
    const auto = await resume('t2', 'auto');
    assert.equal(auto.resumedFrom, 't1/ckpt-000000005.bin');
    assert.equal(auto.shards, 3, "the checkpoint's shard count, whatever this machine's cores");
    assert.equal(auto.threads, Math.min(3, availableParallelism()));
    const fixed = await resume('t3', 1);
    assert.equal(fixed.resumedFrom, undefined, "a checkpoint of 3 shards is not a 1-shard run's");
    assert.equal(fixed.shards, 1);
    assert.equal(fixed.threads, 1);
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  });

  test('a diverged step fails as Diverged, naming the last good checkpoint', async () => {
    const store = memoryStore();
    const env = new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf', runId: 'r1' } });
    const o = options({ store, cacheDir: '/none' }, 'd/', { config: { ...config, divergence: { maxLoss: 1e-6 } } });
    try {
      await assert.rejects(env.run(runTraining, o), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, Failure.Diverged);
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /the last good state is checkpoint d\/ckpt-000000000\.bin/);
        return true;
      });
    } finally {
      o.model.dispose();
    }
  });
});
