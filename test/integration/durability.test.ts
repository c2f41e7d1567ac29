// Durability on the real stack (issue: durable past any number of preemptions): the heavy worker SIGKILLed more
// times than any fixed attempt budget during training, and the run still completes with every batch trained.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { REPO_ROOT } from '../../infra/config';
import { NotResumableError, resumeHardeningRun } from '../../client/resume';
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

/** `tempered <args>` as a child process against the test stack; resolves with its exit code and output. */
function tempered(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/tempered.js', ...args], {
      cwd: REPO_ROOT,
      stdio: 'pipe',
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
  });
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

  test('a run terminated mid-training is resumed: no baseline work again, training continues its checkpoint', async () => {
    const handle = await start(tinySpec());
    const oldRunId = (await handle.describe()).runId;
    await waitFor(handle, (p) => (p.training?.checkpointCursor ?? -1) >= 6, 'a few training checkpoints');
    await handle.terminate('failed on purpose by the test');
    await heavy.kill('SIGKILL');
    heavy = await spawnWorker({ queues, only: 'heavy' });

    const cli = await tempered('resume', handle.workflowId, '--json');
    assert.equal(cli.code, 0, cli.err);
    const started = JSON.parse(cli.out) as { reused: string[]; resumedFrom: { temporalRunId: string } };
    assert.deepEqual(started.reused, ['fetching-dataset', 'preparing-model', 'baseline-eval']);
    assert.equal(started.resumedFrom.temporalRunId, oldRunId);

    const latest = client.workflow.getHandle(handle.workflowId);
    const summary = (await latest.result()) as RunSummary;
    assert.equal(summary.status, 'completed', JSON.stringify(summary));
    assert.deepEqual(summary.resumedFrom, { workflowId: handle.workflowId, temporalRunId: oldRunId });
    assert.deepEqual(summary.reused, ['fetching-dataset', 'preparing-model', 'baseline-eval']);
    assert.equal(summary.training?.batches, 48);
    // Training continued the terminated execution's newest checkpoint instead of starting over: the new
    // execution's first checkpoint lies past it (a fresh start writes batch 0 first).
    const newRunId = (await latest.describe()).runId;
    const cursors = async (runId: string) =>
      (await store.list(bucket, `runs/${handle.workflowId}/${runId}/hardened/checkpoints/`))
        .map((e) => Number(/ckpt-(\d+)\.bin$/.exec(e.key)?.[1]))
        .filter((n) => Number.isFinite(n));
    const oldNewest = Math.max(...(await cursors(oldRunId)));
    const newFirst = Math.min(...(await cursors(newRunId)));
    assert.ok(oldNewest >= 6, `the terminated run had checkpoints up to ${oldNewest}`);
    assert.ok(newFirst > oldNewest, `the resumed run's first checkpoint ${newFirst} lies past ${oldNewest}`);
    assert.ok(summary.training?.resumedFrom, 'training resumed from a checkpoint');
    // The new execution ran no baseline work; its memo links to the old one.
    const description = await latest.describe();
    assert.notEqual(description.runId, oldRunId);
    assert.deepEqual((description.memo as { resumedFrom?: unknown }).resumedFrom, summary.resumedFrom);
    const types = ((await latest.fetchHistory()).events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter((t): t is string => t !== undefined);
    for (const done of ['fetchDataset', 'prepareModel', 'baselineEval']) assert.ok(!types.includes(done), types.join());
    assert.ok(types.includes('adversarialTrain') && types.includes('benchmark'));

    // A completed run is refused, by the SDK and by the CLI.
    await assert.rejects(resumeHardeningRun(client, handle.workflowId), (err: unknown) => {
      assert.ok(err instanceof NotResumableError);
      assert.match(err.message, /completed \(completed\); only a failed, cancelled or timed-out run can be resumed/);
      return true;
    });
    const refused = await tempered('resume', handle.workflowId);
    assert.notEqual(refused.code, 0);
    assert.match(refused.err, /completed \(completed\)/);
  });

  test('a repeated run hits the step cache: the same baseline is neither trained nor evaluated again', async () => {
    // The runs above trained and evaluated this baseline (same dataset, model spec, evaluation and seed).
    const spec = tinySpec({ training: { epochs: 1, batchSize: 50, checkpointEveryBatches: 4, learningRate: 0.002 } });
    const summary = (await (await start(spec)).result()) as RunSummary;
    assert.equal(summary.status, 'completed', JSON.stringify(summary));
    assert.deepEqual(summary.cached, ['preparing-model', 'baseline-eval']);
    const entries = await store.list(bucket, 'cache/steps/');
    assert.ok(
      entries.some((e) => e.key.startsWith('cache/steps/baseline-eval/')),
      'the baseline evaluation is cached',
    );

    // compute.cache false recomputes.
    const off = (await (await start({ ...spec, compute: { ...spec.compute, cache: false } })).result()) as RunSummary;
    assert.equal(off.cached, undefined);
  });
});
