// A real Prometheus (Debian's `prometheus` package; .ci/run installs it) scrapes real workers during a short run,
// and every PromQL query of the Grafana dashboard (infra/grafana/dashboards/tempered.json) must be valid and, but
// for the few that count failures, return series. promtool checks the alert rules and runs their unit tests
// (infra/prometheus-rules.test.yml). Skipped, saying why, where prometheus is not installed.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { HARDENING_RUN } from '../../workflows/messages';
import { REPO_ROOT } from '../../infra/config';
import { pickFreePorts } from '../../infra/stack';
import type { SpecInput } from '../../schemas/spec';
import { spawnWorker } from '../support/workers';
import type { WorkerProcess } from '../support/workers';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const missing = !existsSync(PROMETHEUS) || !existsSync(PROMTOOL);
const skip = missing ? 'prometheus is not installed (Debian: apt-get install prometheus; .ci/run does)' : false;

/** Dashboard queries that may rightly be empty after a clean run: they count failures and retries. */
const MAY_BE_EMPTY = [
  /tempered_activity_retries_total/,
  /temporal_activity_execution_failed/,
  /temporal_workflow_failed/,
];

interface Panel {
  title?: string;
  panels?: Panel[];
  targets?: { expr?: string }[];
}

async function dashboardQueries(): Promise<{ title: string; expr: string }[]> {
  const dashboard = JSON.parse(
    await readFile(join(REPO_ROOT, 'infra', 'grafana', 'dashboards', 'tempered.json'), 'utf8'),
  ) as Panel;
  const out: { title: string; expr: string }[] = [];
  const walk = (p: Panel) => {
    for (const t of p.targets ?? []) if (t.expr) out.push({ title: p.title ?? '?', expr: t.expr });
    for (const c of p.panels ?? []) walk(c);
  };
  walk(dashboard);
  return out;
}

describe('promtool on the alert rules', { skip }, () => {
  test('promtool check rules', () => {
    const out = execFileSync(PROMTOOL, ['check', 'rules', join(REPO_ROOT, 'infra', 'prometheus-rules.yml')], {
      encoding: 'utf8',
    });
    assert.match(out, /SUCCESS: \d+ rules found/);
  });

  test('promtool test rules (infra/prometheus-rules.test.yml)', () => {
    const out = execFileSync(PROMTOOL, ['test', 'rules', join(REPO_ROOT, 'infra', 'prometheus-rules.test.yml')], {
      encoding: 'utf8',
    });
    assert.match(out, /SUCCESS/);
  });
});

describe('Prometheus scraping real workers during a run', { skip }, () => {
  let dir: string;
  let prometheus: ChildProcess | undefined;
  let promUrl: string;
  let workers: WorkerProcess[] = [];
  let connection: Connection | undefined;
  const queues = { io: uniqueName('prom-io'), heavy: uniqueName('prom-heavy') };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tempered-prometheus-'));
    const ports = Object.values(await pickFreePorts()).slice(0, 5);
    const [ioApp, ioSdk, heavyApp, heavySdk, web] = ports;
    // The job names follow infra/prometheus.yml.
    const config = [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: tempered-worker-app',
      `    static_configs: [{ targets: ['127.0.0.1:${ioApp}', '127.0.0.1:${heavyApp}'] }]`,
      '  - job_name: tempered-worker-sdk',
      `    static_configs: [{ targets: ['127.0.0.1:${ioSdk}', '127.0.0.1:${heavySdk}'] }]`,
    ].join('\n');
    await writeFile(join(dir, 'prometheus.yml'), `${config}\n`);
    promUrl = `http://127.0.0.1:${web}`;
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${web}`,
      ],
      { stdio: 'ignore' },
    );
    const env = (app: number, sdk: number) => ({
      TEMPERED_METRICS_PORT: String(app),
      TEMPERED_SDK_METRICS: `127.0.0.1:${sdk}`,
    });
    workers = await Promise.all([
      spawnWorker({ queues, only: 'io', env: env(ioApp, ioSdk) }),
      spawnWorker({ queues, only: 'heavy', env: env(heavyApp, heavySdk) }),
    ]);
    const conn = stackFromEnv();
    connection = await Connection.connect({ address: conn.temporal.address });
    const client = new Client({ connection, namespace: conn.temporal.namespace });
    await storeFromEnv().ensureBucket('tempered');
    const spec: SpecInput = {
      version: 1,
      dataset: { trainSize: 200, testSize: 100, subset: 'stratified' },
      model: { source: { kind: 'train-baseline', epochs: 1, batchSize: 50, learningRate: 0.002 } },
      attack: { steps: 2, stepSize: 0.4 },
      training: { epochs: 1, batchSize: 50, checkpointEveryBatches: 2, learningRate: 0.002 },
      evaluation: {
        attacks: [{ name: 'pgd3', steps: 3, stepSize: 0.4 }],
        testImages: 100,
        epsCurve: [0.1],
        examples: 1,
      },
      gate: { minRobustAccuracy: 0, maxCleanAccuracyDrop: 1 },
      artifacts: { modelName: uniqueName('prom').toLowerCase().slice(0, 30) },
      compute: { ioQueue: queues.io, heavyQueue: queues.heavy, heartbeatTimeout: '30s' },
    };
    const handle = await client.workflow.start(HARDENING_RUN, {
      workflowId: uniqueName('harden-prom'),
      taskQueue: queues.io,
      args: [spec],
    });
    await handle.result();
    await sleep(3000); // a few more scrapes after the end
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    prometheus?.kill('SIGTERM');
    await connection?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('every query of the Grafana dashboard is valid, and returns series (but for failure counters)', async () => {
    const queries = await dashboardQueries();
    assert.ok(queries.length >= 20, `found ${queries.length} queries`);
    const empty: string[] = [];
    for (const { title, expr } of queries) {
      const promql = expr.replaceAll('$run_id', '.*').replaceAll('$__rate_interval', '1m');
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
      assert.equal(body.status, 'success', `${title}: ${promql}: ${body.error}`);
      if ((body.data?.result.length ?? 0) === 0 && !MAY_BE_EMPTY.some((re) => re.test(expr)))
        empty.push(`${title}: ${promql}`);
    }
    assert.deepEqual(empty, [], 'dashboard queries without series after a run');
  });

  test('both kinds of target were up', async () => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('up')}`);
    const body = (await res.json()) as { data: { result: { metric: { job: string }; value: [number, string] }[] } };
    const up = body.data.result.map((r) => `${r.metric.job} ${r.value[1]}`).sort();
    assert.deepEqual(up, [
      'tempered-worker-app 1',
      'tempered-worker-app 1',
      'tempered-worker-sdk 1',
      'tempered-worker-sdk 1',
    ]);
  });
});
