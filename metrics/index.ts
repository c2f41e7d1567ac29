/**
 * Worker metrics for Prometheus: what the activities report while they train and evaluate, on the worker's own
 * prom-client registry (never the global one, so two workers in one process or a test do not collide).
 *
 * The activities receive a `WorkerMetrics` through their factory (`createActivities({ store, metrics })`, typed
 * as `ActivityMetrics` in `activities/deps.ts`) and call a handful of explicit methods; the worker entry serves
 * the registry with `startMetricsServer`. The Temporal SDK's own metrics (task slots, activity latencies) come
 * from the Rust core on a second port: see `installTemporalRuntimeMetrics` in `metrics/temporal.ts` (a separate
 * file, so importing this one does not load the native bridge).
 *
 * Series (all prefixed `tempered_`; `run_id` is the workflow id of the hardening run):
 *
 * | series | type | labels | from |
 * | --- | --- | --- | --- |
 * | `tempered_train_examples_per_second` | gauge | run_id | `trainStep` |
 * | `tempered_train_epsilon` | gauge | run_id | `trainStep` |
 * | `tempered_train_loss` | gauge | run_id | `trainStep` |
 * | `tempered_train_epoch` | gauge | run_id | `trainStep` |
 * | `tempered_train_batch` | gauge | run_id | `trainStep` |
 * | `tempered_train_examples_total` | counter | run_id | `trainStep` (its `examples`) |
 * | `tempered_train_steps_total` | counter | run_id | `trainStep` |
 * | `tempered_clean_accuracy` | gauge | run_id, role | `evaluation` |
 * | `tempered_robust_accuracy` | gauge | run_id, role, attack | `evaluation` |
 * | `tempered_activity_duration_seconds` | histogram | activity, outcome | `stage` |
 * | `tempered_activity_retries_total` | counter | activity | `retry` |
 * | `tempered_checkpoint_write_seconds` | histogram | | `checkpoint` |
 * | `tempered_checkpoint_bytes_total` | counter | | `checkpoint` |
 * | `tempered_checkpoints_total` | counter | | `checkpoint` |
 *
 * plus prom-client's Node process metrics, prefixed `tempered_` (`tempered_process_cpu_seconds_total`,
 * `tempered_nodejs_heap_size_used_bytes`, `tempered_nodejs_eventloop_lag_seconds`, ...).
 *
 * Metrics never fail an activity: a value that is not a finite number (or a negative count) is skipped rather
 * than thrown, except the loss gauge, which shows NaN as NaN (a diverging run should be visible).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'tempered_';

/** One training step (a batch), as the training activity reports it. */
export interface TrainStep {
  /** The hardening run (workflow id). */
  workflowId: string;
  /** 0-based epoch. */
  epoch: number;
  /** Batches done in the current epoch. */
  batch: number;
  /** The ε this batch was attacked with. */
  epsilon: number;
  loss: number;
  /** Training images per second (clean + adversarial forward/backward), smoothed by the caller if it likes. */
  examplesPerSec: number;
  /** Images in this step; adds to `tempered_train_examples_total`. When absent the counter does not move. */
  examples?: number;
}

export type Role = 'baseline' | 'hardened';

/** One evaluation's headline numbers (accuracies in [0, 1]). `Metrics` from `schemas/payloads` fits. */
export interface EvaluationResult {
  /** The hardening run (workflow id). */
  workflowId: string;
  role: Role;
  clean: number;
  /** One entry per attack; extra fields (e.g. `eps`) are ignored. */
  robust: readonly { attack: string; accuracy: number }[];
}

export interface CheckpointWrite {
  /** Bytes written (weights, optimizer state, manifest). */
  bytes: number;
  /** Wall-clock seconds the write took. */
  seconds: number;
}

/** Ends a `stage`: observes its duration with the outcome and returns the seconds. Later calls do nothing. */
export type StopStage = (outcome?: string) => number;

export interface WorkerMetricsOptions {
  /** Labels added to every series, e.g. `{ queue: 'tempered-heavy', worker: os.hostname() }`. Default none. */
  defaultLabels?: Record<string, string>;
  /** Register prom-client's Node process metrics (CPU, memory, event loop, GC), prefixed `tempered_`. Default true. */
  processMetrics?: boolean;
}

export interface MetricsServerOptions {
  /** TCP port; 0 picks a free one (read it from `url` / `port`). */
  port: number;
  /** Interface to bind. Default `127.0.0.1`: pass `0.0.0.0` only where a Prometheus outside this host scrapes. */
  host?: string;
}

export interface MetricsServer {
  /** `http://host:port/metrics`, with the port actually bound. */
  url: string;
  port: number;
  /** Stops listening and drops open (keep-alive) scrape connections. */
  close(): Promise<void>;
}

/** Buckets for activities: a second to half a day (evaluations take minutes, training takes hours). */
const ACTIVITY_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200];
/** Buckets for checkpoint writes: 10 ms to 2 minutes. */
const CHECKPOINT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const finite = (v: number) => typeof v === 'number' && Number.isFinite(v);
const count = (v: number) => finite(v) && v >= 0;

/** The worker's metrics: one registry, the series above, and the methods the activities call. */
export class WorkerMetrics {
  readonly registry: Registry;

  private readonly trainExamplesPerSecond: Gauge<'run_id'>;
  private readonly trainEpsilon: Gauge<'run_id'>;
  private readonly trainLoss: Gauge<'run_id'>;
  private readonly trainEpoch: Gauge<'run_id'>;
  private readonly trainBatch: Gauge<'run_id'>;
  private readonly trainExamples: Counter<'run_id'>;
  private readonly trainSteps: Counter<'run_id'>;
  private readonly cleanAccuracy: Gauge<'run_id' | 'role'>;
  private readonly robustAccuracy: Gauge<'run_id' | 'role' | 'attack'>;
  private readonly activityDuration: Histogram<'activity' | 'outcome'>;
  private readonly activityRetries: Counter<'activity'>;
  private readonly checkpointSeconds: Histogram;
  private readonly checkpointBytes: Counter;
  private readonly checkpoints: Counter;

  constructor(options: WorkerMetricsOptions = {}) {
    const { defaultLabels, processMetrics = true } = options;
    this.registry = new Registry();
    const registers = [this.registry];
    if (defaultLabels) this.registry.setDefaultLabels(defaultLabels);
    if (processMetrics) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });

    const p = METRIC_PREFIX;
    const runGauge = (name: string, help: string) =>
      new Gauge({ name: p + name, help, labelNames: ['run_id'], registers });
    this.trainExamplesPerSecond = runGauge('train_examples_per_second', 'Training images per second (last step)');
    this.trainEpsilon = runGauge('train_epsilon', 'ε of the last training step');
    this.trainLoss = runGauge('train_loss', 'Training loss of the last step (NaN when it diverged)');
    this.trainEpoch = runGauge('train_epoch', 'Current epoch (0-based)');
    this.trainBatch = runGauge('train_batch', 'Batches done in the current epoch');
    this.trainExamples = new Counter({
      name: `${p}train_examples_total`,
      help: 'Training images processed',
      labelNames: ['run_id'],
      registers,
    });
    this.trainSteps = new Counter({
      name: `${p}train_steps_total`,
      help: 'Training steps (batches) reported',
      labelNames: ['run_id'],
      registers,
    });
    this.cleanAccuracy = new Gauge({
      name: `${p}clean_accuracy`,
      help: 'Accuracy on clean test images (0..1)',
      labelNames: ['run_id', 'role'],
      registers,
    });
    this.robustAccuracy = new Gauge({
      name: `${p}robust_accuracy`,
      help: 'Accuracy on adversarial test images per evaluation attack (0..1)',
      labelNames: ['run_id', 'role', 'attack'],
      registers,
    });
    this.activityDuration = new Histogram({
      name: `${p}activity_duration_seconds`,
      help: 'Wall-clock seconds of one activity attempt, by outcome',
      labelNames: ['activity', 'outcome'],
      buckets: ACTIVITY_BUCKETS,
      registers,
    });
    this.activityRetries = new Counter({
      name: `${p}activity_retries_total`,
      help: 'Activity attempts after the first (Temporal retries)',
      labelNames: ['activity'],
      registers,
    });
    this.checkpointSeconds = new Histogram({
      name: `${p}checkpoint_write_seconds`,
      help: 'Seconds to write one training checkpoint',
      buckets: CHECKPOINT_BUCKETS,
      registers,
    });
    this.checkpointBytes = new Counter({
      name: `${p}checkpoint_bytes_total`,
      help: 'Bytes of checkpoints written',
      registers,
    });
    this.checkpoints = new Counter({ name: `${p}checkpoints_total`, help: 'Checkpoints written', registers });
  }

  /** One training step: sets the run's training gauges and counts the step (and its `examples`). */
  trainStep(step: TrainStep): void {
    const labels = { run_id: step.workflowId };
    if (finite(step.examplesPerSec)) this.trainExamplesPerSecond.set(labels, step.examplesPerSec);
    if (finite(step.epsilon)) this.trainEpsilon.set(labels, step.epsilon);
    if (typeof step.loss === 'number') this.trainLoss.set(labels, step.loss);
    if (finite(step.epoch)) this.trainEpoch.set(labels, step.epoch);
    if (finite(step.batch)) this.trainBatch.set(labels, step.batch);
    if (step.examples !== undefined && count(step.examples)) this.trainExamples.inc(labels, step.examples);
    this.trainSteps.inc(labels);
  }

  /** An evaluation's clean and per-attack robust accuracy for the run and role (baseline or hardened). */
  evaluation(result: EvaluationResult): void {
    const { workflowId, role } = result;
    if (finite(result.clean)) this.cleanAccuracy.set({ run_id: workflowId, role }, result.clean);
    for (const { attack, accuracy } of result.robust) {
      if (finite(accuracy)) this.robustAccuracy.set({ run_id: workflowId, role, attack }, accuracy);
    }
  }

  /**
   * Starts timing one activity attempt. Call the returned function once when it ends, with its outcome
   * (`success` by default; use `failure` or `cancelled` otherwise): it observes
   * `tempered_activity_duration_seconds{activity,outcome}` and returns the seconds.
   */
  stage(activity: string): StopStage {
    const end = this.activityDuration.startTimer({ activity });
    let seconds: number | undefined;
    return (outcome = 'success') => (seconds ??= end({ outcome }));
  }

  /** One checkpoint written: its size and how long the write took. */
  checkpoint(write: CheckpointWrite): void {
    this.checkpoints.inc();
    if (count(write.bytes)) this.checkpointBytes.inc(write.bytes);
    if (count(write.seconds)) this.checkpointSeconds.observe(write.seconds);
  }

  /** An activity attempt started; attempts after the first count as retries (`activityInfo().attempt`). */
  retry(activity: string, attempt: number): void {
    if (finite(attempt) && attempt > 1) this.activityRetries.inc({ activity });
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  async exposition(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Serves the registry over HTTP: `GET /metrics` answers the exposition text, any other path 404, any other
   * method 405. Resolves once listening.
   */
  async startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
    const { port, host = '127.0.0.1' } = options;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end();
        return;
      }
      this.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.registry.contentType });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = (server.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    return {
      url: `http://${urlHost}:${bound}/metrics`,
      port: bound,
      close: () =>
        new Promise<void>((resolve, reject) => {
          server.close((err) => (err ? reject(err) : resolve()));
          server.closeAllConnections();
        }),
    };
  }
}
