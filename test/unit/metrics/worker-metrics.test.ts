import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ActivityMetrics } from '../../../activities/deps';
import { WorkerMetrics } from '../../../metrics';
import type { MetricsServer } from '../../../metrics';
import { parseExposition, valueOf } from './exposition';
import type { Sample } from './exposition';

describe('WorkerMetrics over HTTP', () => {
  const metrics = new WorkerMetrics({ defaultLabels: { queue: 'tempered-heavy' } });
  // Compile-time: the activities' hook interface accepts a WorkerMetrics.
  const hooks: ActivityMetrics = metrics;
  let server: MetricsServer;

  before(async () => {
    server = await metrics.startMetricsServer({ port: 0 });
  });
  after(async () => {
    await server.close();
  });

  async function scrape(): Promise<Sample[]> {
    const res = await fetch(server.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    return parseExposition(await res.text());
  }

  test('binds an ephemeral port on loopback and reports it', () => {
    assert.ok(server.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);
  });

  test('answers 404 off /metrics and 405 for other methods', async () => {
    assert.equal((await fetch(server.url.replace('/metrics', '/'))).status, 404);
    assert.equal((await fetch(server.url.replace('/metrics', '/metricsx'))).status, 404);
    assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${server.url}?x=1`)).status, 200);
  });

  test('trainStep moves the training gauges and counters per run', async () => {
    hooks.trainStep({ workflowId: 'run-a', epoch: 0, batch: 3, epsilon: 0.05, loss: 1.25, examplesPerSec: 410 });
    metrics.trainStep({
      workflowId: 'run-a',
      epoch: 1,
      batch: 7,
      epsilon: 0.1,
      loss: 0.5,
      examplesPerSec: 500,
      examples: 128,
    });
    metrics.trainStep({
      workflowId: 'run-a',
      epoch: 1,
      batch: 8,
      epsilon: 0.1,
      loss: 0.4,
      examplesPerSec: 520,
      examples: 64,
    });
    metrics.trainStep({
      workflowId: 'run-b',
      epoch: 0,
      batch: 1,
      epsilon: 0.01,
      loss: 2,
      examplesPerSec: 90,
      examples: 32,
    });
    const s = await scrape();
    const a = { run_id: 'run-a', queue: 'tempered-heavy' };
    assert.equal(valueOf(s, 'tempered_train_examples_per_second', a), 520);
    assert.equal(valueOf(s, 'tempered_train_epsilon', a), 0.1);
    assert.equal(valueOf(s, 'tempered_train_loss', a), 0.4);
    assert.equal(valueOf(s, 'tempered_train_epoch', a), 1);
    assert.equal(valueOf(s, 'tempered_train_batch', a), 8);
    assert.equal(valueOf(s, 'tempered_train_examples_total', a), 192);
    assert.equal(valueOf(s, 'tempered_train_steps_total', a), 3);
    assert.equal(valueOf(s, 'tempered_train_examples_total', { run_id: 'run-b' }), 32);
    assert.equal(valueOf(s, 'tempered_train_loss', { run_id: 'run-b' }), 2);
  });

  test('a NaN loss shows as NaN; bad counts are skipped, not thrown', async () => {
    metrics.trainStep({
      workflowId: 'run-nan',
      epoch: 0,
      batch: 1,
      epsilon: 0.1,
      loss: NaN,
      examplesPerSec: 1,
      examples: -5,
    });
    const s = await scrape();
    assert.ok(Number.isNaN(valueOf(s, 'tempered_train_loss', { run_id: 'run-nan' })));
    assert.ok(!s.some((x) => x.name === 'tempered_train_examples_total' && x.labels.run_id === 'run-nan'));
    assert.equal(valueOf(s, 'tempered_train_steps_total', { run_id: 'run-nan' }), 1);
  });

  test('evaluation sets clean and per-attack robust accuracy by role', async () => {
    metrics.evaluation({
      workflowId: 'run-a',
      role: 'baseline',
      clean: 0.91,
      robust: [
        { attack: 'fgsm', accuracy: 0.12 },
        { attack: 'pgd20', accuracy: 0.03 },
      ],
    });
    hooks.evaluation({
      workflowId: 'run-a',
      role: 'hardened',
      clean: 0.84,
      robust: [{ attack: 'pgd20', accuracy: 0.61 }],
    });
    const s = await scrape();
    assert.equal(valueOf(s, 'tempered_clean_accuracy', { run_id: 'run-a', role: 'baseline' }), 0.91);
    assert.equal(valueOf(s, 'tempered_clean_accuracy', { run_id: 'run-a', role: 'hardened' }), 0.84);
    assert.equal(valueOf(s, 'tempered_robust_accuracy', { role: 'baseline', attack: 'fgsm' }), 0.12);
    assert.equal(valueOf(s, 'tempered_robust_accuracy', { role: 'baseline', attack: 'pgd20' }), 0.03);
    assert.equal(valueOf(s, 'tempered_robust_accuracy', { role: 'hardened', attack: 'pgd20' }), 0.61);
  });

  test('stage observes the duration once, with its outcome', async () => {
    const stop = metrics.stage('benchmark');
    await new Promise((r) => setTimeout(r, 30));
    const seconds = stop('failure');
    assert.ok(seconds >= 0.02 && seconds < 5, `measured ${seconds}s`);
    assert.equal(stop('success'), seconds, 'a second stop changes nothing');
    metrics.stage('benchmark')();
    const s = await scrape();
    const count = (outcome: string) =>
      valueOf(s, 'tempered_activity_duration_seconds_count', { activity: 'benchmark', outcome });
    assert.equal(count('failure'), 1);
    assert.equal(count('success'), 1);
    const sum = valueOf(s, 'tempered_activity_duration_seconds_sum', { activity: 'benchmark', outcome: 'failure' });
    assert.ok(Math.abs(sum - seconds) < 1e-9);
    assert.equal(
      valueOf(s, 'tempered_activity_duration_seconds_bucket', { activity: 'benchmark', outcome: 'failure', le: '0.1' }),
      1,
    );
  });

  test('checkpoint counts writes and bytes and observes the write time', async () => {
    metrics.checkpoint({ bytes: 1000, seconds: 0.2 });
    hooks.checkpoint({ bytes: 500, seconds: 3 });
    const s = await scrape();
    assert.equal(valueOf(s, 'tempered_checkpoints_total'), 2);
    assert.equal(valueOf(s, 'tempered_checkpoint_bytes_total'), 1500);
    assert.equal(valueOf(s, 'tempered_checkpoint_write_seconds_count'), 2);
    assert.equal(valueOf(s, 'tempered_checkpoint_write_seconds_sum'), 3.2);
    assert.equal(valueOf(s, 'tempered_checkpoint_write_seconds_bucket', { le: '0.25' }), 1);
  });

  test('retry counts only attempts after the first', async () => {
    metrics.retry('adversarialTrain', 1);
    metrics.retry('adversarialTrain', 2);
    hooks.retry('adversarialTrain', 3);
    metrics.retry('fetchDataset', 1);
    const s = await scrape();
    assert.equal(valueOf(s, 'tempered_activity_retries_total', { activity: 'adversarialTrain' }), 2);
    assert.equal(
      s.filter((x) => x.name === 'tempered_activity_retries_total' && x.labels.activity === 'fetchDataset').length,
      0,
    );
  });

  test('includes the Node process metrics under the tempered_ prefix', async () => {
    const s = await scrape();
    assert.ok(s.some((x) => x.name === 'tempered_process_cpu_user_seconds_total'));
    assert.ok(s.some((x) => x.name.startsWith('tempered_nodejs_')));
    assert.ok(!s.some((x) => x.name.startsWith('process_') || x.name.startsWith('nodejs_')));
  });
});

describe('WorkerMetrics registries', () => {
  test('two instances do not share series (own registry, not the global one)', async () => {
    const a = new WorkerMetrics({ processMetrics: false });
    const b = new WorkerMetrics({ processMetrics: false });
    a.checkpoint({ bytes: 10, seconds: 1 });
    assert.equal(valueOf(parseExposition(await a.exposition()), 'tempered_checkpoints_total'), 1);
    assert.equal(valueOf(parseExposition(await b.exposition()), 'tempered_checkpoints_total'), 0);
    const { register } = await import('prom-client');
    assert.equal(register.getSingleMetric('tempered_checkpoints_total'), undefined);
  });

  test('a taken port rejects with EADDRINUSE', async () => {
    const a = new WorkerMetrics({ processMetrics: false });
    const first = await a.startMetricsServer({ port: 0 });
    try {
      await assert.rejects(a.startMetricsServer({ port: first.port }), { code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
  });
});
