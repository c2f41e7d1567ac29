/**
 * hardeningRun on a local Temporal dev server (the binary in .venv) with fake activities: the order of calls,
 * the queues, the gate, approval, cancellation, invalid specs and permanent failures.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { SPEC_READS } from '../../../schemas/payloads';
import type { AdversarialTrainInput, EvaluateShardInput, TrainResult } from '../../../schemas/payloads';
import { Failure, fail } from '../../../schemas/failures';
import {
  approveSignal,
  approveUpdate,
  cancelSignal,
  cancelUpdate,
  progressQuery,
  progressSignal,
  rejectSignal,
  rejectUpdate,
} from '../../../workflows/messages';
import { fakeActivities, metrics, runHardening, temporalBinary, until, workflowBundle } from './env';

let env: TestWorkflowEnvironment;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  [env] = await Promise.all([
    TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalBinary() }, ip: '127.0.0.1' },
    }),
    workflowBundle(),
  ]);
});

after(async () => {
  await env?.teardown();
});

/** The error a failed run ends with, and its cause (the failure the workflow threw). */
async function failure(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => assert.fail('expected the workflow to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
  assert.ok(err.cause instanceof ApplicationFailure, `expected an ApplicationFailure cause, got ${String(err.cause)}`);
  return err.cause;
}

/** The activities of one evaluation: its step-cache lookup and store, and the fan-out (shards, extras, reduction). */
const EVALUATION = ['lookupEvaluation', 'evaluateShard', 'evaluationExtras', 'reduceEvaluation', 'storeEvaluation'];
/** I/O activities: they run on the io queue whatever the backend. */
const IO = [
  'fetchDataset',
  'promoteArtifact',
  'writeReport',
  'reduceEvaluation',
  'lookupEvaluation',
  'storeEvaluation',
];

/** Activity names in call order; one evaluation's activities read as one `evaluation`. */
const names = (calls: { name: string }[]) =>
  calls
    .map((c) => (EVALUATION.includes(c.name) ? 'evaluation' : c.name))
    .filter((n, i, all) => n !== 'evaluation' || all[i - 1] !== 'evaluation');

describe('hardeningRun', () => {
  test('happy path: every stage in order, on its queue; the gate passes and production moves', async () => {
    const { activities, calls, store } = fakeActivities();
    const summary = await runHardening(env, { version: 1, artifacts: { modelName: 'fmnist' } }, activities);

    assert.deepEqual(names(calls), [
      'fetchDataset',
      'prepareModel',
      'evaluation',
      'adversarialTrain',
      'evaluation',
      'promoteArtifact',
      'writeReport',
    ]);
    // 1000 test images in shards of 250: four shards per evaluation, each on the heavy queue.
    const shards = calls.filter((c) => c.name === 'evaluateShard').map((c) => (c.input as EvaluateShardInput).shard);
    assert.deepEqual(shards.map((s) => `${s.start}+${s.count}`).sort(), [
      '0+250',
      '0+250',
      '250+250',
      '250+250',
      '500+250',
      '500+250',
      '750+250',
      '750+250',
    ]);
    for (const call of calls) {
      const io = IO.includes(call.name);
      assert.match(call.taskQueue, io ? /^io-/ : /^heavy-/, `${call.name} ran on ${call.taskQueue}`);
      assert.equal(call.attempt, 1);
    }
    // Activities receive the parsed spec's sections: defaults filled, derived ε resolved.
    const input = calls.find((c) => c.name === 'adversarialTrain')!.input as AdversarialTrainInput;
    assert.equal(input.spec.training.epochs, 5);
    const shard = calls.find((c) => c.name === 'evaluateShard')!.input as EvaluateShardInput;
    assert.equal(shard.spec.evaluation.attacks[0].eps, 0.1);
    assert.equal(input.model.uri, 's3://tempered/models/classifier/v6');
    assert.equal(input.dataset.key, 'datasets/fashion-mnist');

    assert.equal(summary.status, 'completed');
    assert.equal(summary.stage, 'done');
    assert.equal(summary.modelName, 'fmnist');
    assert.deepEqual(summary.baseline?.clean, 0.91);
    assert.deepEqual(summary.hardened?.robust, 0.62);
    assert.equal(summary.gate?.passed, true);
    assert.equal(summary.gate?.decidedBy, 'gate');
    assert.equal(summary.artifact?.promoted, true);
    assert.equal(summary.artifact?.version, 'v7');
    assert.equal(store.production, 'v7');
    assert.match(summary.reportUri ?? '', /report\.html$/);
    assert.match(summary.checkpointKey ?? '', /checkpoints\/final$/);
    assert.equal(summary.backend, 'wasm');
    for (const stage of ['fetching-dataset', 'training', 'benchmark', 'promoting'])
      assert.ok(summary.timings[stage] >= 0, `timing of ${stage}`);
    // The report saw the decision.
    const report = calls.find((c) => c.name === 'writeReport')!.input as {
      summary: { status: string; gate?: { passed: boolean } };
    };
    assert.equal(report.summary.status, 'completed');
    assert.equal(report.summary.gate?.passed, true);
  });

  test('each activity input carries only the spec sections its stage reads; the whole spec goes to the manifest and the report', async () => {
    const { activities, calls } = fakeActivities();
    const description = `hostile-${'d'.repeat(4000)}`;
    let history = '';
    await runHardening(env, { version: 1, description }, activities, async (handle) => {
      await handle.result().catch(() => undefined);
      const events = proto.temporal.api.history.v1.History.encode(await handle.fetchHistory()).finish();
      history = Buffer.from(events).toString('latin1');
    });
    const reader: Partial<Record<string, readonly string[]>> = {
      fetchDataset: SPEC_READS.fetchDataset,
      prepareModel: SPEC_READS.prepareModel,
      adversarialTrain: SPEC_READS.adversarialTrain,
    };
    for (const c of calls) {
      const keys = Object.keys((c.input as { spec: object }).spec).sort();
      if (c.name === 'promoteArtifact' || c.name === 'writeReport') {
        assert.equal((c.input as { spec: { description?: string } }).spec.description, description, c.name);
      } else {
        assert.deepEqual(keys, [...(reader[c.name] ?? SPEC_READS.evaluation)].sort(), c.name);
      }
    }
    // The description is recorded where the run starts and in the two inputs that record the spec, not once per
    // activity (this run schedules 18 activities and two evaluation children).
    const copies = history.split(description).length - 1;
    assert.ok(calls.length >= 15, `expected a whole run, got ${calls.length} calls`);
    assert.ok(copies >= 1 && copies <= 3, `the description is in the history ${copies} times`);
  });

  test('compute.backend is a requirement: tensor work goes to <heavyQueue>@<backend>, I/O stays on io', async () => {
    const { activities, calls } = fakeActivities();
    const summary = await runHardening(env, { version: 1, compute: { backend: 'tensorflow' } }, activities);
    assert.equal(summary.status, 'completed');
    const heavy = calls.filter((c) => !IO.includes(c.name));
    const heavyNames = new Set(heavy.map((c) => c.name));
    for (const name of ['prepareModel', 'adversarialTrain', 'evaluateShard', 'evaluationExtras'] as const)
      assert.ok(heavyNames.has(name), `${name} ran (${[...heavyNames].join(', ')})`);
    for (const call of heavy)
      assert.match(call.taskQueue, /^heavy-.*@tensorflow$/, `${call.name} on ${call.taskQueue}`);
    for (const call of calls.filter((c) => !heavy.includes(c))) assert.match(call.taskQueue, /^io-/);
  });

  test('gate failure: rejected with reasons, the version is stored but production does not move', async () => {
    const { activities, calls, store } = fakeActivities({ benchmark: async () => metrics(0.7, 0.3) });
    const summary = await runHardening(env, { version: 1 }, activities);

    assert.equal(summary.status, 'rejected');
    assert.equal(summary.gate?.passed, false);
    assert.equal(summary.gate?.decidedBy, 'gate');
    assert.match(summary.gate?.reasons.join('\n') ?? '', /robust accuracy 30\.0% .* is below the required 50\.0%/);
    assert.match(summary.gate?.reasons.join('\n') ?? '', /drop of 21\.0%, beyond the allowed 10\.0%/);
    const promote = calls.find((c) => c.name === 'promoteArtifact');
    assert.equal((promote?.input as { decision: { passed: boolean } }).decision.passed, false);
    assert.equal(summary.artifact?.promoted, false);
    assert.equal(store.production, 'v6');
  });

  test('approval: the run waits for a person, and the approve signal promotes', async () => {
    const { activities, calls, store } = fakeActivities();
    const summary = await runHardening(env, { version: 1, gate: { requireApproval: true } }, activities, async (h) => {
      await until(async () => (await h.query(progressQuery)).awaitingApproval);
      assert.ok(!names(calls).includes('promoteArtifact'), 'nothing promoted before the decision');
      await h.signal(approveSignal, { by: 'alice', reason: 'numbers look right' });
    });

    assert.equal(summary.status, 'completed');
    assert.equal(summary.gate?.decidedBy, 'person');
    assert.equal(summary.gate?.by, 'alice');
    assert.ok(summary.gate?.reasons.includes('approved by alice: numbers look right'));
    assert.equal(store.production, 'v7');
  });

  test('approval: the reject signal keeps production', async () => {
    const { activities, store } = fakeActivities();
    const summary = await runHardening(env, { version: 1, gate: { requireApproval: true } }, activities, async (h) => {
      await until(async () => (await h.query(progressQuery)).awaitingApproval);
      await h.signal(rejectSignal, { by: 'bob', reason: 'too slow' });
    });
    assert.equal(summary.status, 'rejected');
    assert.equal(summary.gate?.decidedBy, 'person');
    assert.equal(summary.gate?.passed, false);
    assert.equal(store.production, 'v6');
  });

  test('approval timeout: nobody decides, so the result says timeout and nothing is promoted', async () => {
    const { activities, calls, store } = fakeActivities();
    const summary = await runHardening(
      env,
      { version: 1, gate: { requireApproval: true, approvalTimeout: '1s' } },
      activities,
    );
    assert.equal(summary.status, 'rejected');
    assert.equal(summary.gate?.decidedBy, 'timeout');
    assert.equal(summary.gate?.passed, false);
    assert.match(summary.gate?.reasons.at(-1) ?? '', /nobody approved or rejected within 1s/);
    const promote = calls.find((c) => c.name === 'promoteArtifact');
    assert.equal((promote?.input as { decision: { decidedBy: string } }).decision.decidedBy, 'timeout');
    assert.equal(store.production, 'v6');
  });

  test('cancel during training: training stops, the run ends cancelled with the last checkpoint key', async () => {
    let sawCancellation = false;
    const adversarialTrain = async ({ workflowId }: AdversarialTrainInput): Promise<TrainResult> => {
      const ctx = Context.current();
      const workflow = env.client.workflow.getHandle(ctx.info.workflowExecution?.workflowId ?? '');
      const progress = (batch: number, checkpointKey: string) => ({
        epoch: 1,
        epochs: 5,
        batch,
        batchesPerEpoch: 100,
        epsilon: 0.05,
        loss: 1.2,
        imagesPerSecond: 900,
        checkpoints: batch / 10,
        checkpointKey,
      });
      await workflow.signal(progressSignal, progress(10, `runs/${workflowId}/checkpoints/b10`));
      try {
        for (;;) {
          ctx.heartbeat({ cursor: 10, checkpoints: 1, checkpointKey: `runs/${workflowId}/checkpoints/b10` });
          await Promise.race([ctx.cancelled, ctx.sleep(50)]);
        }
      } catch (err) {
        if (!(err instanceof CancelledFailure)) throw err;
        sawCancellation = true;
        // The graceful stop: a last checkpoint, reported before the activity gives up.
        await workflow.signal(progressSignal, progress(20, `runs/${workflowId}/checkpoints/b20`));
        throw err;
      }
    };
    const { activities, calls } = fakeActivities({ adversarialTrain });
    const summary = await runHardening(
      env,
      { version: 1, compute: { heartbeatTimeout: '5s' } },
      activities,
      async (h) => {
        await until(async () => {
          const p = await h.query(progressQuery);
          return p.stage === 'training' && p.checkpointKey !== undefined;
        });
        const p = await h.query(progressQuery);
        assert.equal(p.training?.batch, 10);
        assert.equal(p.training?.batchesPerEpoch, 100);
        assert.equal(p.training?.imagesPerSecond, 900);
        assert.equal(p.baseline?.clean, 0.91);
        await h.signal(cancelSignal, { by: 'carol', reason: 'wrong ε' });
      },
    );

    assert.ok(sawCancellation, 'the training activity saw the cancellation');
    assert.equal(summary.status, 'cancelled');
    assert.equal(summary.stage, 'training');
    assert.match(summary.checkpointKey ?? '', /checkpoints\/b20$/);
    assert.equal(summary.checkpoints, 2);
    assert.deepEqual(summary.cancel, { by: 'carol', reason: 'wrong ε' });
    assert.deepEqual(names(calls), ['fetchDataset', 'prepareModel', 'evaluation', 'adversarialTrain']);
  });

  test('cancel while awaiting approval: cancelled, nothing promoted', async () => {
    const { activities, calls } = fakeActivities();
    const summary = await runHardening(env, { version: 1, gate: { requireApproval: true } }, activities, async (h) => {
      await until(async () => (await h.query(progressQuery)).awaitingApproval);
      await h.signal(cancelSignal);
    });
    assert.equal(summary.status, 'cancelled');
    assert.equal(summary.stage, 'awaiting-approval');
    assert.equal(summary.gate, undefined);
    assert.ok(!names(calls).includes('promoteArtifact'));
  });

  test('a Temporal cancellation (handle.cancel) reaches training and ends the workflow as Cancelled', async () => {
    let sawCancellation = false;
    const { activities } = fakeActivities({
      adversarialTrain: async () => {
        const ctx = Context.current();
        try {
          for (;;) {
            ctx.heartbeat({ cursor: 0, checkpoints: 0 });
            await Promise.race([ctx.cancelled, ctx.sleep(50)]);
          }
        } catch (err) {
          sawCancellation = err instanceof CancelledFailure;
          throw err;
        }
      },
    });
    const run = runHardening(env, { version: 1, compute: { heartbeatTimeout: '5s' } }, activities, async (h) => {
      await until(async () => (await h.query(progressQuery)).stage === 'training');
      await h.cancel();
    });
    const err = await run.then(
      () => assert.fail('expected the workflow to end cancelled'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
    assert.ok(sawCancellation, 'the training activity saw the cancellation');
  });

  test('invalid spec: fails as InvalidSpec naming every bad field, before any activity runs', async () => {
    const { activities, calls } = fakeActivities();
    const cause = await failure(
      runHardening(env, { version: 1, training: { epochs: -1 }, epsilion: 0.3 } as never, activities),
    );
    assert.equal(cause.type, Failure.InvalidSpec);
    assert.equal(cause.nonRetryable, true);
    assert.match(cause.message, /training\.epochs: got -1, expected an integer >= 1/);
    assert.match(cause.message, /epsilion: unknown key \(did you mean epsilon\?\)/);
    assert.deepEqual(calls, []);
  });

  test('a permanent failure (Diverged) propagates with its type, without retries', async () => {
    const { activities, calls } = fakeActivities({
      adversarialTrain: async () => {
        throw fail(Failure.Diverged, 'loss=NaN at epoch 1 batch 3', { epoch: 1, batch: 3 });
      },
    });
    const cause = await failure(runHardening(env, { version: 1 }, activities));
    assert.equal(cause.type, Failure.Diverged);
    assert.match(cause.message, /^training: loss=NaN at epoch 1 batch 3/);
    assert.deepEqual(cause.details, [{ epoch: 1, batch: 3 }]);
    assert.equal(calls.filter((c) => c.name === 'adversarialTrain').length, 1);
    assert.ok(!names(calls).includes('promoteArtifact'));
  });

  test('failure types of the vocabulary are not retried even when thrown as retryable', async () => {
    const { activities, calls } = fakeActivities({
      fetchDataset: async () => {
        throw ApplicationFailure.retryable(
          'train-images-idx3-ubyte.gz: sha256 abc.. but the spec pins def..',
          Failure.ChecksumMismatch,
        );
      },
    });
    const cause = await failure(runHardening(env, { version: 1 }, activities));
    assert.equal(cause.type, Failure.ChecksumMismatch);
    assert.match(cause.message, /^fetching-dataset: /);
    assert.deepEqual(names(calls), ['fetchDataset']);
  });

  test('training attempts that advanced the checkpoint do not spend the retry budget', async () => {
    let attempts = 0;
    const adversarialTrain = async (input: AdversarialTrainInput): Promise<TrainResult> => {
      const ctx = Context.current();
      const workflow = env.client.workflow.getHandle(ctx.info.workflowExecution?.workflowId ?? '');
      const n = ++attempts;
      if (n > 5) return base.activities.adversarialTrain(input);
      const progress = {
        epoch: 0,
        epochs: 5,
        batch: n * 4,
        batchesPerEpoch: 100,
        epsilon: 0.05,
        loss: 1.2,
        imagesPerSecond: 900,
        checkpoints: n,
        checkpointCursor: n * 4,
      };
      if (n === 3 || n === 4) {
        // A killed worker: the cursor reaches the workflow only through the heartbeat the server kept.
        ctx.heartbeat({ cursor: n * 4, checkpoints: n, progress });
        await Promise.race([ctx.cancelled, ctx.sleep(10_000)]).catch(() => undefined);
        throw new Error('the worker is gone');
      }
      await workflow.signal(progressSignal, progress);
      throw new Error(`preempted after checkpoint ${n}`);
    };
    const base = fakeActivities();
    const { activities, calls } = fakeActivities({ adversarialTrain });
    const summary = await runHardening(
      env,
      { version: 1, compute: { heartbeatTimeout: '1s', maxAttemptsWithoutProgress: 2 } },
      activities,
    );
    assert.equal(summary.status, 'completed');
    // Five failures, more than the budget of two, and each attempt is a fresh schedule (attempt 1).
    const training = calls.filter((c) => c.name === 'adversarialTrain');
    assert.deepEqual(
      training.map((c) => c.attempt),
      [1, 1, 1, 1, 1, 1],
    );
  });

  test('training attempts that make no progress fail the run with NoProgress once the budget is spent', async () => {
    const { activities, calls } = fakeActivities({
      adversarialTrain: async () => {
        throw new Error('CUDA out of memory');
      },
    });
    const cause = await failure(
      runHardening(env, { version: 1, compute: { maxAttemptsWithoutProgress: 2 } }, activities),
    );
    assert.equal(cause.type, Failure.NoProgress);
    assert.equal(cause.nonRetryable, true);
    assert.match(cause.message, /^training: 2 attempts in a row made no progress \(no progress was ever reported/);
    assert.match(cause.message, /compute\.maxAttemptsWithoutProgress is 2\); last error: CUDA out of memory$/);
    assert.equal(calls.filter((c) => c.name === 'adversarialTrain').length, 2);
    assert.ok(!names(calls).includes('benchmark'));
  });

  test('a transient failure is retried', async () => {
    let failures = 1;
    const base = fakeActivities();
    const { activities, calls } = fakeActivities({
      fetchDataset: async (input) => {
        if (failures-- > 0) throw new Error('connection reset while downloading');
        return base.activities.fetchDataset(input);
      },
    });
    const summary = await runHardening(env, { version: 1 }, activities);
    assert.equal(summary.status, 'completed');
    assert.deepEqual(
      calls.filter((c) => c.name === 'fetchDataset').map((c) => c.attempt),
      [1, 2],
    );
  });

  test('decision updates: refused with the reason while not waiting, answered when they apply', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { activities, store } = fakeActivities();
    const fetchDataset = activities.fetchDataset;
    activities.fetchDataset = async (input) => {
      await held;
      return fetchDataset(input);
    };
    const refusal = async (p: Promise<unknown>) => {
      const err = await p.then(
        () => assert.fail('expected the update to be refused'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
      return (err.cause as Error).message;
    };
    const summary = await runHardening(env, { version: 1, gate: { requireApproval: true } }, activities, async (h) => {
      await until(async () => (await h.query(progressQuery)).stage === 'fetching-dataset');
      assert.equal(
        await refusal(h.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] })),
        'not awaiting approval: stage fetching-dataset',
      );
      assert.match(await refusal(h.executeUpdate(rejectUpdate, { args: [{ by: '' }] })), /malformed decision/);
      release();
      await until(async () => (await h.query(progressQuery)).awaitingApproval);
      assert.deepEqual(await h.executeUpdate(approveUpdate, { args: [{ by: 'alice', reason: 'fine' }] }), {
        stage: 'awaiting-approval',
      });
      // Decided: a second decision and a cancel are refused, each with its reason.
      assert.match(await refusal(h.executeUpdate(rejectUpdate, { args: [{ by: 'bob' }] })), /^not awaiting approval/);
    });
    assert.equal(summary.status, 'completed');
    assert.equal(summary.gate?.by, 'alice');
    assert.equal(store.production, 'v7');
  });

  test('cancel update: answered with the stage the run was in; the run ends cancelled', async () => {
    const { activities } = fakeActivities();
    const summary = await runHardening(env, { version: 1, gate: { requireApproval: true } }, activities, async (h) => {
      await until(async () => (await h.query(progressQuery)).awaitingApproval);
      assert.deepEqual(await h.executeUpdate(cancelUpdate, { args: [{ by: 'carol', reason: 'maintenance' }] }), {
        stage: 'awaiting-approval',
      });
    });
    assert.equal(summary.status, 'cancelled');
    assert.deepEqual(summary.cancel, { by: 'carol', reason: 'maintenance' });
  });
});
