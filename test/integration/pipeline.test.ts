// The hardening pipeline end to end, on the real Temporal server and S3 store the test runner started: a full
// run with a worker SIGKILLed mid-training and the Temporal server restarted, the store down during promotion,
// cancellation, and the failures that must happen before any work. Budgets are tiny (a few hundred images).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { REPO_ROOT } from '../../infra/config';
import type { RunProgress, RunSummary } from '../../schemas/payloads';
import type { SpecInput } from '../../schemas/spec';
import { parseS3Uri } from '../../storage/object-store';
import { approveSignal, cancelSignal, HARDENING_RUN, progressQuery } from '../../workflows/messages';
import { restartStack, stopServer } from '../support/servers';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';
import { spawnWorker } from '../support/workers';
import type { WorkerProcess } from '../support/workers';

const HISTORIES = join(REPO_ROOT, 'test', 'fixtures', 'histories');
const queues = { io: uniqueName('it-io'), heavy: uniqueName('it-heavy') };
const bucket = uniqueName('pipe').toLowerCase().slice(0, 40);
const store = storeFromEnv();
let client: Client;
let connection: Connection;
let io: WorkerProcess;
let heavy: WorkerProcess;

/**
 * A run small enough for CI yet large enough that hardening shows: 1000 train images, a baseline trained long
 * enough to be accurate (and so fragile), 40 adversarial batches with a checkpoint every 4.
 */
function tinySpec(overrides: Partial<SpecInput> = {}): SpecInput {
  return {
    version: 1,
    dataset: { trainSize: 1000, testSize: 200, subset: 'stratified' },
    model: { source: { kind: 'train-baseline', epochs: 2, batchSize: 50, learningRate: 0.002 } },
    attack: { steps: 3, stepSize: 0.4 },
    epsilon: { max: 0.1, kind: 'linear', warmupEpochs: 1 },
    // No probe hold-out, so every image trains: 20 batches × 2 epochs (the guard has tests of its own).
    training: { epochs: 2, batchSize: 50, checkpointEveryBatches: 4, learningRate: 0.002, probe: { images: 0 } },
    evaluation: {
      attacks: [{ name: 'pgd10', steps: 10, stepSize: 0.25 }],
      testImages: 200,
      epsCurve: [0, 0.1],
      examples: 2,
      sanityImages: 0,
    },
    gate: { minRobustAccuracy: 0, maxCleanAccuracyDrop: 1 },
    artifacts: { bucket, modelName: uniqueName('m').toLowerCase().slice(0, 30) },
    compute: { ioQueue: queues.io, heavyQueue: queues.heavy, heartbeatTimeout: '8s' },
    ...overrides,
  };
}

async function start(spec: SpecInput, id = uniqueName('run')): Promise<WorkflowHandle> {
  return client.workflow.start(HARDENING_RUN, { workflowId: id, taskQueue: queues.io, args: [spec] });
}

/** Polls the progress query until `until` holds (query errors while a server restarts are retried). */
async function waitFor(
  handle: WorkflowHandle,
  until: (p: RunProgress) => boolean,
  what: string,
  timeoutMs = 240_000,
): Promise<RunProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: RunProgress | undefined;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(progressQuery);
      if (until(last)) return last;
      if (last.status !== 'running') break;
    } catch {
      // server restarting
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; last progress ${JSON.stringify(last)}`);
}

async function checkpointsIn(prefixUri: string): Promise<string[]> {
  const { bucket: b, key } = parseS3Uri(prefixUri, { requireKey: false });
  return (await store.list(b, key)).map((e) => e.key).filter((k) => /ckpt-\d+\.bin$/.test(k));
}

async function keepHistory(name: string, handle: WorkflowHandle): Promise<void> {
  const history = await handle.fetchHistory();
  // The recorded history must replay against the current workflow code.
  await Worker.runReplayHistory({ workflowsPath: join(REPO_ROOT, 'workflows', 'index.ts') }, history, name);
  // TEMPERED_RECORD_HISTORIES=1 refreshes the committed histories that test/unit/workflows/replay.test.ts replays.
  if (process.env.TEMPERED_RECORD_HISTORIES !== '1') return;
  await mkdir(HISTORIES, { recursive: true });
  // Binary protobuf: JSON of a history round-trips only through the SDK's own protobufjs, which npm may duplicate.
  await writeFile(join(HISTORIES, `${name}.pb`), proto.temporal.api.history.v1.History.encode(history).finish());
}

/** The attempt number of the last try of an activity type in a finished run. */
async function lastAttempt(handle: WorkflowHandle, activityType: string): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType)
      .map((e) => String(e.eventId)),
  );
  const attempts = events
    .filter((e) => scheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
    .map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0);
  return Math.max(0, ...attempts);
}

/** Scrapes the worker's /metrics twice during training: the training series exist and move. */
async function assertMetricsMove(worker: WorkerProcess): Promise<void> {
  const url = /metrics (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(worker.output())?.[1];
  assert.ok(url, `the worker printed its metrics URL:\n${worker.output()}`);
  const sample = async (name: string) => {
    const text = await (await fetch(url)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };
  const first = await sample('tempered_train_steps_total');
  const deadline = Date.now() + 60_000;
  let later = first;
  while (Date.now() < deadline && (later ?? 0) <= (first ?? 0)) {
    await sleep(500);
    later = await sample('tempered_train_steps_total');
  }
  assert.ok(first !== undefined && later !== undefined && later > first, `steps ${first} → ${later}`);
  assert.ok(((await sample('tempered_train_epsilon')) ?? 0) > 0, 'ε is exported');
  assert.ok(((await sample('tempered_train_examples_per_second')) ?? 0) > 0, 'throughput is exported');
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

describe('hardeningRun on the real stack', () => {
  test('an invalid spec fails before any activity, naming the field', async () => {
    const handle = await start({ ...tinySpec(), training: { epochs: -1 } } as SpecInput);
    const err = await handle.result().then(
      () => assert.fail('an invalid spec must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    const cause = err.cause as ApplicationFailure;
    assert.equal(cause.type, 'InvalidSpec');
    assert.match(cause.message, /training\.epochs/);
    const events = (await handle.fetchHistory()).events ?? [];
    assert.equal(events.filter((e) => e.activityTaskScheduledEventAttributes).length, 0, 'no activity ran');
  });

  test('a dataset with a wrong sha256 fails once, without retries', async () => {
    const spec = tinySpec();
    spec.dataset = { ...spec.dataset, sha256: { 'train-labels-idx1-ubyte.gz': 'ab'.repeat(32) } };
    const handle = await start(spec);
    const err = await handle.result().then(
      () => assert.fail('a checksum mismatch must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    const failure = err.cause as ApplicationFailure;
    assert.equal(failure.type, 'ChecksumMismatch', String(err.cause?.message));
    assert.match(failure.message, /train-labels-idx1-ubyte\.gz: expected sha256 abab/);
    const events = (await handle.fetchHistory()).events ?? [];
    const started = events.filter((e) => e.activityTaskStartedEventAttributes);
    assert.equal(started.length, 1);
    assert.equal(started[0].activityTaskStartedEventAttributes?.attempt, 1, 'no retry of a permanent failure');
  });

  test('survives a SIGKILLed worker and a Temporal restart mid-training, resumes from a checkpoint, and hardens', async () => {
    const spec = tinySpec();
    const handle = await start(spec);
    await waitFor(handle, (p) => (p.training?.checkpoints ?? 0) >= 1, 'training to start');
    await assertMetricsMove(heavy);
    const atKill = await waitFor(handle, (p) => (p.training?.checkpoints ?? 0) >= 3, 'three training checkpoints');
    await heavy.kill('SIGKILL');
    const prefix = atKill.training?.checkpointKey?.replace(/ckpt-\d+\.bin$/, '') as string;
    const beforeKill = await checkpointsIn(prefix);
    const newestBeforeKill = beforeKill.sort().at(-1) as string;
    heavy = await spawnWorker({ queues, only: 'heavy' });

    // Once training moved on after the resume, restart the Temporal server on the same SQLite file.
    await waitFor(
      handle,
      (p) => (p.training?.checkpoints ?? 0) > atKill.training!.checkpoints,
      'a checkpoint after resume',
    );
    await stopServer('temporal');
    await sleep(1_000);
    await restartStack();

    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.status, 'completed', JSON.stringify(summary.gate));
    const training = summary.training;
    assert.ok(training?.resumedFrom, 'the retried attempt resumed from a checkpoint');
    const resumedKey = parseS3Uri(training.resumedFrom).key;
    const resumedCursor = Number(/ckpt-(\d+)\.bin$/.exec(resumedKey)?.[1]);
    assert.ok(resumedCursor > 0, `resumed at batch cursor ${resumedCursor}`);
    // It resumed from the newest checkpoint written before the kill (or a later one written just as it died),
    // so at most one checkpoint interval of batches was trained twice.
    assert.ok(resumedKey >= newestBeforeKill, `resumed from ${resumedKey}, newest before the kill ${newestBeforeKill}`);
    assert.equal(training.batches, 40);

    // The hardened model is more robust than the baseline on the same images.
    assert.ok(summary.baseline && summary.hardened);
    assert.ok(
      summary.hardened.robust > summary.baseline.robust,
      `robust accuracy: baseline ${summary.baseline.robust}, hardened ${summary.hardened.robust}`,
    );
    assert.equal(summary.artifact?.promoted, true);
    const version = parseS3Uri(summary.artifact.uri, { requireKey: false });
    assert.ok(await store.exists(version.bucket, `${version.key}manifest.json`));
    assert.ok(await store.exists(version.bucket, `${version.key}report.html`));
    await keepHistory('completed-after-kill-and-restart', handle);
  });

  test('the object store down during promotion: the step retries and one version results', async () => {
    const spec = tinySpec({ gate: { minRobustAccuracy: 0, maxCleanAccuracyDrop: 1, requireApproval: true } });
    const handle = await start(spec);
    await waitFor(handle, (p) => p.awaitingApproval, 'the approval wait');
    await stopServer('s3');
    await handle.signal(approveSignal, { by: 'integration-test' });
    await waitFor(handle, (p) => p.stage === 'promoting', 'promotion to start');
    await sleep(4_000);
    await restartStack();
    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.status, 'completed');
    assert.equal(summary.gate?.decidedBy, 'person');
    const versions = await store.list(bucket, `models/${spec.artifacts!.modelName}/versions/`);
    const distinct = new Set(versions.map((v) => /versions\/(v\d+)\//.exec(v.key)?.[1]));
    assert.deepEqual([...distinct], ['v1'], 'exactly one version');
    assert.ok((await lastAttempt(handle, 'promoteArtifact')) > 1, 'promotion was retried while the store was down');
    await keepHistory('approved-with-store-outage', handle);
  });

  test('cancel during training ends the run as cancelled and keeps the last checkpoint', async () => {
    const handle = await start(tinySpec({ training: { epochs: 4, batchSize: 50, checkpointEveryBatches: 2 } }));
    await waitFor(handle, (p) => (p.training?.checkpoints ?? 0) >= 2, 'two training checkpoints');
    await handle.signal(cancelSignal, { by: 'integration-test', reason: 'testing cancel' });
    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.status, 'cancelled');
    assert.ok(summary.checkpointKey, 'the summary names the last checkpoint');
    const { bucket: b, key } = parseS3Uri(summary.checkpointKey);
    assert.ok(await store.exists(b, key), `${summary.checkpointKey} is in the object store`);
    assert.equal(summary.artifact, undefined, 'nothing promoted');
    await keepHistory('cancelled-during-training', handle);
  });
});
