// Durability on the real stack (issue: durable past any number of preemptions): the heavy worker SIGKILLed more
// times than any fixed attempt budget during training, and the run still completes with every batch trained.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import type { RunProgress, RunSummary } from '../../schemas/payloads';
import type { SpecInput } from '../../schemas/spec';
import { HARDENING_RUN, progressQuery } from '../../workflows/messages';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';
import { spawnWorker } from '../support/workers';
import type { WorkerProcess } from '../support/workers';

const queues = { io: uniqueName('dur-io'), heavy: uniqueName('dur-heavy') };
const bucket = uniqueName('dur').toLowerCase().slice(0, 40);
const store = storeFromEnv();
let client: Client;
let connection: Connection;
let io: WorkerProcess;
let heavy: WorkerProcess;

/** A tiny run: 600 images, a one-epoch baseline, 4 × 12 adversarial batches with a checkpoint every 2. */
function tinySpec(overrides: Partial<SpecInput> = {}): SpecInput {
  return {
    version: 1,
    dataset: { trainSize: 600, testSize: 100, subset: 'stratified' },
    model: { source: { kind: 'train-baseline', epochs: 1, batchSize: 50, learningRate: 0.002 } },
    attack: { steps: 2, stepSize: 0.5 },
    epsilon: { max: 0.1, kind: 'linear', warmupEpochs: 1 },
    training: { epochs: 4, batchSize: 50, checkpointEveryBatches: 2, learningRate: 0.002 },
    evaluation: { attacks: [{ name: 'pgd3', steps: 3, stepSize: 0.4 }], testImages: 100, epsCurve: [0.1], examples: 1 },
    gate: { minRobustAccuracy: 0, maxCleanAccuracyDrop: 1 },
    artifacts: { bucket, modelName: uniqueName('m').toLowerCase().slice(0, 30) },
    compute: { ioQueue: queues.io, heavyQueue: queues.heavy, heartbeatTimeout: '5s' },
    ...overrides,
  };
}

async function start(spec: SpecInput, id = uniqueName('dur')): Promise<WorkflowHandle> {
  return client.workflow.start(HARDENING_RUN, { workflowId: id, taskQueue: queues.io, args: [spec] });
}

/** Polls the progress query until `until` holds. */
async function waitFor(
  handle: WorkflowHandle,
  until: (p: RunProgress) => boolean,
  what: string,
  timeoutMs = 180_000,
): Promise<RunProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: RunProgress | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(progressQuery);
    if (until(last)) return last;
    if (last.status !== 'running') break;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; last progress ${JSON.stringify(last)}`);
}

/** Every attempt number of every scheduled `activityType` in a run's history, in order. */
async function attemptsOf(handle: WorkflowHandle, activityType: string): Promise<number[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType)
      .map((e) => String(e.eventId)),
  );
  return events
    .filter((e) => scheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
    .map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0);
}

before(async () => {
  const conn = stackFromEnv();
  connection = await Connection.connect({ address: conn.temporal.address });
  client = new Client({ connection, namespace: conn.temporal.namespace });
  await store.ensureBucket(bucket);
  [io, heavy] = await Promise.all([spawnWorker({ queues, only: 'io' }), spawnWorker({ queues, only: 'heavy' })]);
});

after(async () => {
  await Promise.all([io?.kill('SIGKILL'), heavy?.kill('SIGKILL')]);
  await connection?.close();
});

describe('durability on the real stack', () => {
  test('the heavy worker SIGKILLed 6 times during training: every attempt progressed, so the run completes', async () => {
    const handle = await start(tinySpec());
    const kills: number[] = [];
    let cursor = -1;
    for (let k = 0; k < 6; k++) {
      // Kill as soon as this attempt has written a checkpoint past the previous kill's.
      const p = await waitFor(
        handle,
        (q) => (q.training?.checkpointCursor ?? -1) > cursor,
        `a checkpoint past ${cursor} (kill ${k + 1})`,
      );
      cursor = p.training?.checkpointCursor ?? cursor;
      await heavy.kill('SIGKILL');
      kills.push(cursor);
      assert.ok(cursor < 48, `training finished before kill ${k + 1}; kills so far at ${kills.join(', ')}`);
      heavy = await spawnWorker({ queues, only: 'heavy' });
    }
    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.status, 'completed', JSON.stringify(summary));
    assert.equal(summary.training?.batches, 48, 'every batch trained');
    assert.ok(summary.training?.resumedFrom, 'the last attempt resumed from a checkpoint');
    // Each kill was an attempt of its own (the workflow re-scheduled it), and none spent a retry budget.
    const attempts = await attemptsOf(handle, 'adversarialTrain');
    assert.ok(
      attempts.length >= 7,
      `at least 7 training attempts, got ${attempts.length}: kills at ${kills.join(', ')}`,
    );
  });
});
