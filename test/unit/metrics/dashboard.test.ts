/**
 * The Grafana dashboard and the alert rules must not drift from what the worker exports: every `tempered_*`
 * name in a query exists in WorkerMetrics' registry, and every `temporal_*` name is one the SDK's Rust core
 * defines (read from the core-bridge sources shipped in node_modules, when present).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { WorkerMetrics } from '../../../metrics';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DASHBOARD = join(ROOT, 'infra/grafana/dashboards/tempered.json');
const RULES = join(ROOT, 'infra/prometheus-rules.yml');
const SDK_CORE = join(ROOT, 'node_modules/@temporalio/core-bridge/sdk-core/crates');

interface Panel {
  id?: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query?: unknown; definition?: string }[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every PromQL expression in the dashboard: panel targets and variable queries. */
function dashboardQueries(): string[] {
  const exprs = allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const v of dashboard.templating.list) {
    if (typeof v.definition === 'string') exprs.push(v.definition);
    const q = v.query as { query?: unknown } | string | undefined;
    if (typeof q === 'string' && v.name !== 'datasource') exprs.push(q);
    else if (q && typeof q === 'object' && typeof q.query === 'string') exprs.push(q.query);
  }
  return exprs;
}

function ruleQueries(): string[] {
  const rules = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
  return rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

const namesIn = (exprs: string[], prefix: string) =>
  [
    ...new Set(exprs.flatMap((e) => [...e.matchAll(new RegExp(`\\b${prefix}[a-zA-Z0-9_]+`, 'g'))].map((m) => m[0]))),
  ].sort();

/** Series names the registry exposes: counters and gauges as named, histograms with `_bucket`, `_sum`, `_count`. */
async function exportedSeries(): Promise<Set<string>> {
  const metrics = new WorkerMetrics();
  const out = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    out.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(m.name + s);
  }
  return out;
}

test('every tempered_* series the dashboard queries is exported by WorkerMetrics', async () => {
  const exported = await exportedSeries();
  const used = namesIn(dashboardQueries(), 'tempered_');
  assert.ok(used.length >= 15, `only ${used.length} tempered series found in the dashboard: ${used.join(', ')}`);
  const missing = used.filter((n) => !exported.has(n));
  assert.deepEqual(missing, [], `dashboard queries series the worker does not export`);
  // The brief's series are all on the dashboard.
  for (const n of [
    'tempered_train_examples_per_second',
    'tempered_train_epsilon',
    'tempered_train_loss',
    'tempered_train_epoch',
    'tempered_train_batch',
    'tempered_train_examples_total',
    'tempered_clean_accuracy',
    'tempered_robust_accuracy',
    'tempered_activity_duration_seconds_bucket',
    'tempered_activity_retries_total',
    'tempered_checkpoint_bytes_total',
    'tempered_checkpoints_total',
    'tempered_checkpoint_write_seconds_bucket',
  ]) {
    assert.ok(used.includes(n), `${n} has no panel`);
  }
});

test('every tempered_* series the alert rules use is exported by WorkerMetrics', async () => {
  const exported = await exportedSeries();
  const used = namesIn(ruleQueries(), 'tempered_');
  assert.ok(used.length > 0);
  assert.deepEqual(
    used.filter((n) => !exported.has(n)),
    [],
  );
});

/** Metric names the SDK core defines: string literals in its telemetry sources. */
function sdkMetricNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const p = join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (entry.endsWith('.rs'))
        for (const m of readFileSync(p, 'utf8').matchAll(/"([a-z][a-z0-9_]+)"/g)) names.add(m[1]);
    }
  };
  walk(SDK_CORE);
  return names;
}

test(
  'every temporal_* series is one the Temporal SDK core defines (default temporal_ prefix)',
  { skip: existsSync(SDK_CORE) ? false : `no SDK core sources at ${SDK_CORE}` },
  () => {
    const defined = sdkMetricNames();
    const used = namesIn([...dashboardQueries(), ...ruleQueries()], 'temporal_');
    assert.ok(used.includes('temporal_worker_task_slots_available'));
    assert.ok(used.includes('temporal_activity_execution_latency_bucket'));
    const unknown = used.filter((n) => !defined.has(n.replace(/^temporal_/, '').replace(/_(bucket|sum|count)$/, '')));
    assert.deepEqual(unknown, [], 'names the SDK does not define');
  },
);

test('the dashboard is well formed: unique ids, 24-column grid, queries on the datasource variable', () => {
  assert.equal(dashboard.uid, 'tempered-worker');
  const panels = allPanels(dashboard.panels);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
    for (const t of p.targets ?? []) {
      assert.equal(t.datasource?.uid, '${datasource}', `${p.title} uses the datasource variable`);
      assert.ok(t.expr.trim().length > 0);
    }
  }
  assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource'));
  assert.ok(dashboard.templating.list.some((v) => v.name === 'run_id'));
});

test('the Grafana provisioning points at the mounted dashboards and the compose Prometheus', () => {
  const ds = parseYaml(readFileSync(join(ROOT, 'infra/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
    datasources: { type: string; url: string }[];
  };
  assert.equal(ds.datasources[0].type, 'prometheus');
  assert.equal(ds.datasources[0].url, 'http://prometheus:9090');
  const dash = parseYaml(readFileSync(join(ROOT, 'infra/grafana/provisioning/dashboards/tempered.yml'), 'utf8')) as {
    providers: { options: { path: string } }[];
  };
  assert.equal(dash.providers[0].options.path, '/var/lib/grafana/dashboards');
  const compose = join(ROOT, 'infra/docker-compose.yml');
  if (existsSync(compose)) {
    const text = readFileSync(compose, 'utf8');
    assert.ok(text.includes('./grafana/dashboards:/var/lib/grafana/dashboards'), 'compose mounts the dashboards there');
    assert.ok(text.includes('./grafana/provisioning:/etc/grafana/provisioning'), 'compose mounts the provisioning');
  }
});
