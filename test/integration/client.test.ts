// The client SDK and the run commands against the real Temporal server: a real hardeningRun, run by workers
// started here with fake activities (test/unit/workflows/env.ts). The documented CI example runs as written.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import {
  RunAlreadyStartedError,
  connectClient,
  getHardeningRun,
  listRuns,
  startHardeningRun,
} from '../../client/index';
import { RunSummary } from '../../schemas/payloads';
import { fakeActivities, workflowBundle } from '../unit/workflows/env';
import { tempered } from '../support/cli';
import { stackFromEnv, uniqueName } from '../support/stack';

Runtime.install({ logger: new DefaultLogger('WARN') });

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Runs a TypeScript entry (the CI example) as a child process; resolves with its exit code and output. */
function runTs(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: repo, env, stdio: 'pipe' });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

async function until<T>(get: () => Promise<T | undefined>, what: string, ms = 20000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await get().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('client SDK on the real server', () => {
  const conn = stackFromEnv();
  const ioQueue = uniqueName('client-io');
  const heavyQueue = uniqueName('client-heavy');
  const modelName = uniqueName('m').toLowerCase().slice(0, 40);
  let dir: string;
  let client: Client;
  let native: NativeConnection;
  let workers: Worker[] = [];
  let running: Promise<unknown>[] = [];
  const specYaml = (extra = '') =>
    `version: 1\nartifacts:\n  modelName: ${modelName}\ncompute:\n  ioQueue: ${ioQueue}\n  heavyQueue: ${heavyQueue}\n${extra}`;
  const spec = (extra: object = {}) => ({
    version: 1,
    artifacts: { modelName },
    compute: { ioQueue, heavyQueue },
    ...extra,
  });
  const childEnv = () => ({ ...process.env, TEMPERED_HOME: join(dir, 'no-stack') });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tempered-client-'));
    native = await NativeConnection.connect({ address: conn.temporal.address });
    const { activities } = fakeActivities();
    const common = { connection: native, namespace: conn.temporal.namespace, activities } as const;
    workers = [
      await Worker.create({ ...common, taskQueue: ioQueue, workflowBundle: await workflowBundle() }),
      await Worker.create({ ...common, taskQueue: heavyQueue }),
    ];
    running = workers.map((w) => w.run());
    client = await connectClient({ env: { ...process.env, TEMPERED_HOME: join(dir, 'no-stack') } });
  });

  after(async () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
    await client?.connection.close();
    await native?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the documented CI example runs as written: completed, exit 0', async () => {
    const file = join(dir, 'spec.yaml');
    await writeFile(file, specYaml());
    const { code, out, err } = await runTs(['client/examples/ci-harden.ts', file], childEnv());
    assert.equal(code, 0, `exit ${code}\n${out}\n${err}`);
    const id = /^started (harden-\S+)$/m.exec(out)?.[1];
    assert.match(id ?? '', new RegExp(`^harden-${modelName}-\\d{8}-\\d{6}$`));
    assert.match(out, /^completed: robust 0\.04 -> 0\.62$/m);
    assert.match(out, /artifact s3:\/\/tempered\/models\/classifier\/v7/);
    // Visibility lists it (eventually) as a hardeningRun.
    const listed = await until(async () => {
      const runs = await listRuns(client, { limit: 50 });
      return runs.find((r) => r.workflowId === id);
    }, 'the run in listRuns');
    assert.equal(listed.status, 'COMPLETED');
    assert.equal(listed.modelName, modelName);
    assert.equal(listed.taskQueue, ioQueue);
  });

  test('progress, a refused duplicate id, approve → completed RunSummary', async () => {
    const workflowId = uniqueName(`harden-${modelName}`);
    const run = await startHardeningRun(client, spec({ gate: { requireApproval: true } }), { workflowId });
    assert.equal(run.workflowId, workflowId);
    assert.ok(run.temporalRunId);
    const waiting = await until(async () => {
      const p = await run.progress();
      return p.awaitingApproval ? p : undefined;
    }, 'awaiting approval');
    assert.equal(waiting.stage, 'awaiting-approval');
    assert.equal(waiting.status, 'running');
    assert.equal(waiting.gate?.passed, true);
    assert.equal(waiting.hardened?.clean, 0.86);

    await assert.rejects(startHardeningRun(client, spec(), { workflowId }), RunAlreadyStartedError);

    await run.approve('alice', 'looks good');
    const summary = RunSummary.parse(await run.result());
    assert.equal(summary.status, 'completed');
    assert.equal(summary.gate?.decidedBy, 'person');
    assert.equal(summary.gate?.by, 'alice');
    assert.equal(summary.modelName, modelName);
    // After the end, a handle by id still reads the result and the final progress.
    const again = getHardeningRun(client, workflowId);
    assert.equal((await again.result()).status, 'completed');
    assert.equal((await again.progress()).status, 'completed');
  });

  test('CLI: run --wait --json exits 3 when a person rejects; show and cancel', async () => {
    const file = join(dir, 'approval.yaml');
    await writeFile(file, specYaml('gate:\n  requireApproval: true\n'));
    const workflowId = uniqueName(`harden-${modelName}-cli`);
    const cli = tempered(['run', file, '--wait', '--json', '--id', workflowId, '--interval', '0.2'], {
      env: childEnv(),
    });
    const run = getHardeningRun(client, workflowId);
    await until(async () => ((await run.progress()).awaitingApproval ? true : undefined), 'awaiting approval');
    const shown = await tempered(['show', workflowId], { env: childEnv() });
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /awaiting approval/);
    assert.match(shown.out, /gate\s+PASSED/);

    const rejected = await tempered(['reject', workflowId, '--by', 'bob', '--reason', 'not tonight'], {
      env: childEnv(),
    });
    assert.equal(rejected.code, 0, rejected.err);
    const { code, out, err } = await cli;
    assert.equal(code, 3, `exit ${code}\n${out}\n${err}`);
    const json = JSON.parse(out) as RunSummary & { workflowId: string; link: string };
    assert.equal(json.status, 'rejected');
    assert.equal(json.gate?.by, 'bob');
    assert.match(json.link, new RegExp(`/namespaces/${conn.temporal.namespace}/workflows/${workflowId}$`));
    assert.match(err, /awaiting-approval/, 'the progress line was drawn on stderr');

    const table = await tempered(['show', workflowId], { env: childEnv() });
    assert.equal(table.code, 3);
    assert.match(table.out, /REJECTED/);
    assert.match(table.out, /rejected by bob: not tonight/);

    // cancel: the run stops gracefully and ends cancelled (exit 4 from show).
    const cancelId = uniqueName(`harden-${modelName}-cancel`);
    const toCancel = await startHardeningRun(client, spec({ gate: { requireApproval: true } }), {
      workflowId: cancelId,
    });
    await until(async () => ((await toCancel.progress()).awaitingApproval ? true : undefined), 'awaiting approval');
    const cancelled = await tempered(['cancel', cancelId, '--reason', 'maintenance'], { env: childEnv() });
    assert.equal(cancelled.code, 0, cancelled.err);
    assert.equal((await toCancel.result()).status, 'cancelled');
    const shownCancelled = await tempered(['show', cancelId, '--json'], { env: childEnv() });
    assert.equal(shownCancelled.code, 4);
    assert.equal((JSON.parse(shownCancelled.out) as RunSummary).cancel?.reason, 'maintenance');
  });

  test('CLI: approve on a running run that does not wait for approval exits 1 with the reason', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { activities } = fakeActivities();
    const fetchDataset = activities.fetchDataset;
    activities.fetchDataset = async (input) => {
      await held;
      return fetchDataset(input);
    };
    const io = uniqueName('client-held-io');
    const heavy = uniqueName('client-held-heavy');
    const common = { connection: native, namespace: conn.temporal.namespace, activities } as const;
    const held2 = [
      await Worker.create({ ...common, taskQueue: io, workflowBundle: await workflowBundle() }),
      await Worker.create({ ...common, taskQueue: heavy }),
    ];
    const runs = held2.map((w) => w.run());
    try {
      const workflowId = uniqueName(`harden-${modelName}-held`);
      const run = await startHardeningRun(
        client,
        { ...spec({ gate: { requireApproval: true } }), compute: { ioQueue: io, heavyQueue: heavy } },
        { workflowId },
      );
      await until(async () => ((await run.progress()).stage === 'fetching-dataset' ? true : undefined), 'fetching');
      const refused = await tempered(['approve', workflowId, '--by', 'alice'], { env: childEnv() });
      assert.equal(refused.code, 1, refused.out + refused.err);
      assert.match(refused.err, /refused: not awaiting approval: stage fetching-dataset/);
      const json = await tempered(['reject', workflowId, '--by', 'bob', '--json'], { env: childEnv() });
      assert.equal(json.code, 1);
      assert.equal(
        (JSON.parse(json.out) as { refused: string }).refused,
        'not awaiting approval: stage fetching-dataset',
      );
      release();
      await until(async () => ((await run.progress()).awaitingApproval ? true : undefined), 'awaiting approval');
      const approved = await tempered(['approve', workflowId, '--by', 'alice'], { env: childEnv() });
      assert.equal(approved.code, 0, approved.err);
      assert.match(approved.out, /^approved harden-\S+ \(it was at stage awaiting-approval\)$/m);
      assert.equal((await run.result()).status, 'completed');
    } finally {
      release();
      for (const w of held2) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(runs);
    }
  });

  test('CLI: run warns when no worker polls the queues, show says which one the run waits for', async () => {
    const idleIo = uniqueName('client-idle-io');
    const idleHeavy = uniqueName('client-idle-heavy');
    const file = join(dir, 'idle.json');
    await writeFile(file, JSON.stringify({ ...spec(), compute: { ioQueue: idleIo, heavyQueue: idleHeavy } }));
    const workflowId = uniqueName(`harden-${modelName}-idle`);
    try {
      const started = await tempered(['run', file, '--id', workflowId], { env: childEnv() });
      assert.equal(started.code, 0, started.err);
      assert.match(started.err, new RegExp(`warning: no worker polls ${idleIo} \\(workflow tasks\\)`));
      assert.match(started.err, new RegExp(`${idleHeavy} \\(activity tasks\\)`));
      const shown = await tempered(['show', workflowId], { env: childEnv() });
      assert.equal(shown.code, 0, shown.err);
      assert.match(shown.out, new RegExp(`no worker is polling ${idleIo}`));
    } finally {
      await client.workflow
        .getHandle(workflowId)
        .terminate('test cleanup')
        .catch(() => undefined);
    }
  });
});
