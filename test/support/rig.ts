// A small rig for integration tests of whole runs: its own queues, bucket, io and heavy worker processes (the real
// worker entry, so a test can SIGKILL one), a tiny spec, and helpers to start, watch and inspect runs.
import { spawn } from 'node:child_process';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { REPO_ROOT } from '../../infra/config';
import type { RunProgress } from '../../schemas/payloads';
import type { SpecInput } from '../../schemas/spec';
import type { ObjectStore } from '../../storage/object-store';
import { HARDENING_RUN, progressQuery } from '../../workflows/messages';
import { stackFromEnv, storeFromEnv, uniqueName } from './stack';
import { spawnWorker } from './workers';
import type { WorkerProcess } from './workers';

export interface Rig {
  queues: { io: string; heavy: string };
  bucket: string;
  store: ObjectStore;
  client: Client;
  io: WorkerProcess;
  heavy: WorkerProcess;
  /** A tiny run: 600 images, a one-epoch baseline, 4 × 12 adversarial batches with a checkpoint every 2. */
  tinySpec(overrides?: Partial<SpecInput>): SpecInput;
  start(spec: SpecInput, id?: string): Promise<WorkflowHandle>;
  /** Replaces the heavy worker (after a kill). */
  respawnHeavy(): Promise<WorkerProcess>;
}

/** Registers before/after hooks that start the rig's workers and stop them; the rig is usable inside tests. */
export function useRig(prefix: string): Rig {
  const queues = { io: uniqueName(`${prefix}-io`), heavy: uniqueName(`${prefix}-heavy`) };
  const bucket = uniqueName(prefix).toLowerCase().slice(0, 40);
  let connection: Connection | undefined;
  const rig = {
    queues,
    bucket,
    store: storeFromEnv(),
    tinySpec(overrides: Partial<SpecInput> = {}): SpecInput {
      return {
        version: 1,
        dataset: { trainSize: 600, testSize: 100, subset: 'stratified' },
        model: { source: { kind: 'train-baseline', epochs: 1, batchSize: 50, learningRate: 0.002 } },
        attack: { steps: 2, stepSize: 0.5 },
        epsilon: { max: 0.1, kind: 'linear', warmupEpochs: 1 },
        // No probe hold-out: all 600 images train, 12 batches × 4 epochs = 48 (the guard has tests of its own).
        training: { epochs: 4, batchSize: 50, checkpointEveryBatches: 2, learningRate: 0.002, probe: { images: 0 } },
        evaluation: {
          attacks: [{ name: 'pgd3', steps: 3, stepSize: 0.4 }],
          testImages: 100,
          epsCurve: [0.1],
          examples: 1,
        },
        gate: { minRobustAccuracy: 0, maxCleanAccuracyDrop: 1 },
        artifacts: { bucket, modelName: uniqueName('m').toLowerCase().slice(0, 30) },
        compute: { ioQueue: queues.io, heavyQueue: queues.heavy, heartbeatTimeout: '5s' },
        ...overrides,
      };
    },
    async start(spec: SpecInput, id = uniqueName(prefix)): Promise<WorkflowHandle> {
      return rig.client.workflow.start(HARDENING_RUN, { workflowId: id, taskQueue: queues.io, args: [spec] });
    },
    async respawnHeavy(): Promise<WorkerProcess> {
      rig.heavy = await spawnWorker({ queues, only: 'heavy' });
      return rig.heavy;
    },
  } as Rig;
  before(async () => {
    const conn = stackFromEnv();
    connection = await Connection.connect({ address: conn.temporal.address });
    rig.client = new Client({ connection, namespace: conn.temporal.namespace });
    await rig.store.ensureBucket(bucket);
    [rig.io, rig.heavy] = await Promise.all([
      spawnWorker({ queues, only: 'io' }),
      spawnWorker({ queues, only: 'heavy' }),
    ]);
  });
  after(async () => {
    await Promise.all([rig.io?.kill('SIGKILL'), rig.heavy?.kill('SIGKILL')]);
    await connection?.close();
  });
  return rig;
}

/** Polls the progress query until `until` holds. */
export async function waitFor(
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
export async function attemptsOf(handle: WorkflowHandle, activityType: string): Promise<number[]> {
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
export function tempered(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
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
