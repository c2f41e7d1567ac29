// The fanned-out evaluation on the real Temporal server and S3 store the test runner started: shards of test
// images on two heavy worker processes give the same metrics as one worker, and a worker SIGKILLed mid-shard
// leaves a shard that another worker resumes (at the attack and batch it reached) to the same result.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import * as datasets from '../../activities/fetch-dataset';
import * as models from '../../activities/prepare-model';
import { evaluationProgress } from '../../client/progress';
import type { EvaluateInput, EvaluateShardRef, EvaluationProgress, Metrics } from '../../schemas/payloads';
import { parseSpec } from '../../schemas/spec';
import type { ShardHeartbeat } from '../../activities/evaluate-phases';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';
import { spawnWorker } from '../support/workers';
import type { WorkerProcess } from '../support/workers';
import { inActivity } from '../unit/activities/helpers';

const queues = { io: uniqueName('ev-io'), heavy: uniqueName('ev-heavy') };
const bucket = uniqueName('eval').toLowerCase().slice(0, 40);
const store = storeFromEnv();
let client: Client;
let connection: Connection;
const workers: WorkerProcess[] = [];
/** Heavy workers send every heartbeat within half a second, so the test sees a shard's progress while it runs. */
const heavyWorker = () => spawnWorker({ queues, only: 'heavy', env: { TEMPERED_HEARTBEAT_THROTTLE: '500ms' } });
let input: Omit<EvaluateInput, 'workflowId'>;

/**
 * 200 test images in 8 shards of 25, batches of 10: FGSM then PGD-50 on their own (suite custom). PGD-50 keeps
 * a shard busy for seconds, so the kill test sees one mid-attack (with PGD-10 a shard took 0.4 s and was often
 * over before its first heartbeat reached the server); a batch still finishes well inside the heartbeat timeout.
 */
const spec = parseSpec({
  version: 1,
  dataset: { trainSize: 1000, testSize: 200, subset: 'stratified' },
  model: { source: { kind: 'train-baseline', epochs: 2, batchSize: 50, learningRate: 0.002 } },
  epsilon: { max: 0.1 },
  evaluation: {
    suite: 'custom',
    attacks: [
      { name: 'fgsm', steps: 1, stepSize: 1, randomStart: false },
      { name: 'pgd50', steps: 50, stepSize: 0.25 },
    ],
    testImages: 200,
    shardImages: 25,
    batchSize: 10,
    maxConcurrentShards: 4,
    // An ε curve of clean accuracy alone keeps the extras activity short, so both workers compete for shards.
    epsCurve: [0],
    examples: 2,
    // The sanity panel would keep one worker busy while the other takes every short shard.
    sanityImages: 0,
  },
  artifacts: { bucket },
  compute: { ioQueue: queues.io, heavyQueue: queues.heavy, evaluationHeartbeatTimeout: '20s' },
});

async function start(): Promise<WorkflowHandle> {
  const runId = uniqueName('eval');
  return client.workflow.start('evaluation', {
    workflowId: runId,
    taskQueue: queues.io,
    args: [{ ...input, workflowId: runId } satisfies EvaluateInput],
  });
}

type Event = temporal.api.history.v1.IHistoryEvent;
const decode = <T>(p: { data?: Uint8Array | null } | undefined): T => JSON.parse(Buffer.from(p!.data!).toString());

/** Per evaluateShard task: the worker identity of every attempt, and the shard it handed back. */
async function shardRuns(handle: WorkflowHandle) {
  const events: Event[] = (await handle.fetchHistory()).events ?? [];
  // A shard is retried by the workflow (progress-aware: a new activity per attempt) or by Temporal (attempt > 1):
  // group the executions by the shard they ran.
  const scheduled = new Map<string, number>();
  const activityIds = new Map<string, number>();
  for (const e of events) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== 'evaluateShard') continue;
    const input = decode<{ shard: { index: number } }>(a.input?.payloads?.[0] ?? undefined);
    scheduled.set(String(e.eventId), input.shard.index);
    activityIds.set(String(a.activityId), input.shard.index);
  }
  const count = Math.max(-1, ...scheduled.values()) + 1;
  const runs = Array.from({ length: count }, () => ({
    identities: [] as string[],
    activityIds: [] as string[],
    attempts: 0,
    ref: undefined as EvaluateShardRef | undefined,
  }));
  for (const e of events) {
    const s = e.activityTaskStartedEventAttributes;
    const i = s ? scheduled.get(String(s.scheduledEventId)) : undefined;
    if (s && i !== undefined) {
      runs[i].identities.push(s.identity ?? '');
      runs[i].attempts += s.attempt ?? 1;
    }
    const c = e.activityTaskCompletedEventAttributes;
    const j = c ? scheduled.get(String(c.scheduledEventId)) : undefined;
    if (c && j !== undefined) runs[j].ref = decode<EvaluateShardRef>(c.result?.payloads?.[0] ?? undefined);
  }
  for (const [id, i] of activityIds) runs[i].activityIds.push(id);
  return runs;
}

/** Metrics without the wall-clock figures and the run's own keys, which differ from run to run. */
const comparable = (m: Metrics) => ({
  ...m,
  seconds: 0,
  examples: m.examples.map(({ imageKey: _key, ...e }) => e),
});

before(async () => {
  const conn = stackFromEnv();
  connection = await Connection.connect({ address: conn.temporal.address });
  client = new Client({ connection, namespace: conn.temporal.namespace });
  await store.ensureBucket(bucket);
  const deps = { store, cacheDir: mkdtempSync(join(tmpdir(), 'tempered-eval-')) };
  const runId = uniqueName('prep');
  const dataset = await inActivity(datasets.fetchDataset, runId)(deps, { workflowId: runId, spec });
  const prepared = await inActivity(models.prepareModel, runId)(deps, { workflowId: runId, spec, dataset });
  input = { spec, dataset, model: prepared.model, role: 'hardened' };
  workers.push(...(await Promise.all([spawnWorker({ queues, only: 'io' }), heavyWorker()])));
});

after(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await connection?.close();
});

describe('evaluation fan-out on the real stack', () => {
  let single: Metrics;

  test('one heavy worker: every shard on it; the metrics add up; progress is readable while it runs', async () => {
    const handle = await start();
    // Follow it as the CLI does: the shards query plus the running shards' heartbeats.
    const seen: EvaluationProgress[] = [];
    let ended = false;
    const result = handle.result().finally(() => (ended = true));
    while (!ended) {
      const p = await evaluationProgress(handle);
      if (p) seen.push(p);
      await sleep(100);
    }
    single = await result;
    assert.ok(seen.length > 0, 'the evaluation answered its progress query while it ran');
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].shardsDone >= seen[i - 1].shardsDone, 'shards only finish');
    const last = await evaluationProgress(handle);
    assert.deepEqual(
      { shards: last?.shards, shardsDone: last?.shardsDone, imagesDone: last?.imagesDone, role: last?.role },
      { shards: 8, shardsDone: 8, imagesDone: 200, role: 'hardened' },
    );
    const runs = await shardRuns(handle);
    assert.equal(runs.length, 8);
    assert.equal(new Set(runs.flatMap((r) => r.identities)).size, 1, 'one worker ran every shard');
    assert.equal(single.images, 200);
    assert.equal(single.shards, 8);
    assert.deepEqual(
      single.robust.map((r) => r.attack),
      ['fgsm', 'pgd50'],
    );
    const worst = single.worstCase!;
    assert.ok(worst.accuracy <= Math.min(...single.robust.map((r) => r.accuracy)), 'worst case ≤ every attack');
    assert.ok(worst.interval.low <= worst.accuracy && worst.accuracy <= worst.interval.high);
    assert.ok(single.clean > worst.accuracy, `clean ${single.clean} above worst case ${worst.accuracy}`);
    assert.deepEqual(single.sanity, []);
    assert.equal(
      single.confusion.flat().reduce((a, v) => a + v, 0),
      200,
    );
  });

  test('two heavy workers: both take shards, and the result equals one worker’s', async () => {
    workers.push(await heavyWorker());
    const handle = await start();
    const two = await handle.result();
    const runs = await shardRuns(handle);
    const identities = new Set(runs.flatMap((r) => r.identities));
    assert.equal(identities.size, 2, `shards ran on ${[...identities].join(', ')}`);
    assert.deepEqual(comparable(two), comparable(single));
  });

  test('a worker SIGKILLed mid-shard: the shard resumes on the other worker, the result is unchanged', async () => {
    const handle = await start();
    // Wait for a shard that has heartbeated its way into an attack, freeze its worker (SIGSTOP), and kill it only
    // if the shard is still unfinished: a 25-image shard takes well under a second, so without the freeze it often
    // completes between our look and the kill, and the kill hits a shard that had no progress to resume from.
    const deadline = Date.now() + 120_000;
    let victim: { worker: WorkerProcess; activityId: string; beat: ShardHeartbeat } | undefined;
    while (!victim && Date.now() < deadline) {
      const described = await handle.describe();
      assert.equal(described.status.name, 'RUNNING', 'the evaluation ended before a shard was seen mid-attack');
      const pending = described.raw.pendingActivities ?? [];
      for (const p of pending) {
        if (p.activityType?.name !== 'evaluateShard' || !p.heartbeatDetails?.payloads?.length) continue;
        const beat = decode<ShardHeartbeat>(p.heartbeatDetails.payloads[0]);
        if (beat.phase < 1 && (beat.state?.batch ?? 0) < 1) continue; // the first batch done: kill early
        const pid = Number(String(p.lastWorkerIdentity).split('@')[0]);
        const worker = workers.find((w) => w.child.pid === pid);
        if (!worker) continue;
        process.kill(pid, 'SIGSTOP');
        const still = (await handle.describe()).raw.pendingActivities?.some((q) => q.activityId === p.activityId);
        if (still) {
          victim = { worker, activityId: String(p.activityId), beat };
          // Frozen mid-shard, its heartbeat stays: the live progress counts part of the shard and names its attack.
          const live = await evaluationProgress(handle);
          assert.ok(live, 'the evaluation answers while a worker is frozen');
          assert.ok(live.imagesEstimate > live.imagesDone, `a running shard's share: ${JSON.stringify(live)}`);
          assert.ok(
            live.attacks.every((a) => ['fgsm', 'pgd50'].includes(a)),
            `attacks: ${live.attacks.join(', ')}`,
          );
          break;
        }
        process.kill(pid, 'SIGCONT');
      }
      if (!victim) await sleep(50);
    }
    assert.ok(victim, 'a shard heartbeated progress');
    await victim.worker.kill('SIGKILL');
    workers.splice(workers.indexOf(victim.worker), 1);
    const resumed = await handle.result();
    assert.deepEqual(comparable(resumed), comparable(single));
    const runs = await shardRuns(handle);
    const killed = runs.find((r) => r.activityIds.includes(victim.activityId));
    assert.ok(killed, `the killed activity ${victim.activityId} ran a shard`);
    assert.ok(killed.attempts >= 2, 'the killed shard was retried');
    const at = killed.ref?.resumedAt;
    assert.ok(at, `the killed shard resumed from its heartbeat: ${JSON.stringify(killed.ref)}`);
    const seen = victim.beat;
    const order = (b: { phase: number; attack: number; batch: number }) => [b.phase, b.attack, b.batch];
    const seenAt = { phase: seen.phase, attack: seen.state?.attack ?? 0, batch: seen.state?.batch ?? 0 };
    const cmp =
      order(at)
        .map((v, i) => v - order(seenAt)[i])
        .find((d) => d !== 0) ?? 0;
    assert.ok(cmp >= 0, `resumed at ${JSON.stringify(at)}, before the progress seen (${JSON.stringify(seenAt)})`);
  });
});
