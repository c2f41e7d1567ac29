/**
 * The worker process: polls the io queue (the workflow, fetch, promote, report) and the heavy queue (prepare,
 * evaluate, train), or one of them, against TEMPORAL_ADDRESS (or the local stack), with the S3 store from
 * S3_ENDPOINT (or the local stack). Serves Prometheus metrics, and drains on SIGTERM/SIGINT: running activities
 * get the shutdown grace time to checkpoint, then the process exits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { activitiesFor, createActivities } from '../activities';
import { resolveConnections } from '../infra/config';
import { resolveHome, workerLimits } from '../infra/config';
import { WorkerMetrics } from '../metrics';
import { installTemporalRuntimeMetrics } from '../metrics/temporal';
import { heavyQueueFor } from '../schemas/queues';
import { DEFAULT_HEAVY_QUEUE, DEFAULT_IO_QUEUE } from '../schemas/spec';
import { createObjectStore } from '../storage/object-store';
import { progressSignal } from '../workflows/messages';
import { deploymentFromEnv, promoteBuild, workerDeploymentOptions } from './deployment';
import type { DeploymentSettings } from './deployment';
import { fileLogger } from './logging';

export type QueueRole = 'io' | 'heavy';

export interface WorkerOptions {
  /** Which queues to poll. Default both. */
  queues?: QueueRole[];
  /** Default `tempered-io` (TEMPERED_IO_QUEUE). The workflow runs here too. */
  ioQueue?: string;
  /** Default `tempered-heavy` (TEMPERED_HEAVY_QUEUE). */
  heavyQueue?: string;
  /**
   * The tfjs backend of the heavy work, started before polling. The heavy worker polls `<heavyQueue>@<backend>`
   * (runs whose compute.backend names it) and the plain heavy queue (runs with `auto`) unless a named backend is
   * not this machine's best one (`tempered doctor`), so `auto` runs keep going to the fastest workers. Default:
   * the first that starts (TEMPERED_BACKEND narrows it, as everywhere).
   */
  backend?: string;
  /** Port of the app metrics (`/metrics`); 0 picks a free one; default 9465 (TEMPERED_METRICS_PORT). */
  metricsPort?: number;
  /** host:port of the Temporal SDK's own Prometheus metrics; default 127.0.0.1:9464 (TEMPERED_SDK_METRICS). */
  sdkMetricsAddress?: string | false;
  /** Worker cache (datasets, downloads); default `<TEMPERED_HOME>/cache` (TEMPERED_CACHE_DIR). */
  cacheDir?: string;
  /**
   * Cores the heavy work uses (TEMPERED_WORKER_THREADS): a training takes them all (on wasm `compute.threads: auto`
   * trains one shard per core), an evaluation shard one, on a thread of its own, so that many shards run side by
   * side (an evaluation's extras take one too).
   * Default: this machine's cores; 1 on tensorflow-gpu (one training per GPU).
   */
  threads?: number;
  /** How long running activities get to finish or checkpoint on shutdown. Default '30s'. */
  shutdownGraceTime?: string;
  /**
   * Heartbeat throttle. Default 5 s rather than the SDK's 80 % of each heartbeat timeout (minutes): people follow
   * a baseline's training and an evaluation's shards through their heartbeats (client/progress.ts), and a
   * heartbeat is one small RPC, not a history event. Tests shorten it further.
   */
  maxHeartbeatThrottleInterval?: string;
  /** Called once the workers poll (tests, the demo). */
  onReady?: (info: WorkerReady) => void;
  /** Stops the worker when aborted (instead of, or as well as, the process signals). */
  signal?: AbortSignal;
  /** Install SIGTERM/SIGINT handlers that drain the worker. Default true. */
  handleSignals?: boolean;
  /**
   * With both queues: run the heavy queue in a child process (default), so tensor work, which holds the event
   * loop for seconds at a time, never delays workflow tasks, signals and queries of the io queue. The child's
   * metrics are on the next ports (app metrics + 1, SDK metrics + 3). `TEMPERED_HEAVY_IN_PROCESS=1` keeps one
   * process.
   */
  heavyInChildProcess?: boolean;
  /**
   * Where the Temporal SDK's log lines and the workflow bundler's output go: a file (appended; the heavy child
   * process writes to it too). Default TEMPERED_WORKER_LOG, else the SDK's default, stderr.
   */
  logFile?: string;
  log?: (line: string) => void;
}

export interface WorkerReady {
  queues: string[];
  metricsUrl?: string;
  sdkMetricsAddress?: string;
  temporalAddress: string;
  namespace: string;
}

/**
 * TensorFlow's native start-up notices (absl's, oneDNN's, the CPU feature guard's), which TF_CPP_MIN_LOG_LEVEL does
 * not silence in 2.21: kept in the worker log, not shown on the console.
 */
export const TENSORFLOW_NOTICE =
  /^(WARNING: All log messages before absl::InitializeLog|[IW]\d{4} [\d:. ]+\s+\d+ \S+\.cc:\d+\]|To enable the following instructions:)/;

/** See `WorkerOptions.maxHeartbeatThrottleInterval`. */
export const DEFAULT_HEARTBEAT_THROTTLE = '5s';

const env = process.env;

/** The heavy activities that use one core; the others use all of the worker's. */
const ONE_CORE = new Set(['evaluateShard', 'evaluationExtras']);

/** Runs the worker until a signal (or `options.signal`) stops it; resolves once it has drained. */
export async function runWorker(options: WorkerOptions = {}): Promise<void> {
  const {
    queues = ['io', 'heavy'],
    ioQueue = env.TEMPERED_IO_QUEUE || DEFAULT_IO_QUEUE,
    heavyQueue = env.TEMPERED_HEAVY_QUEUE || DEFAULT_HEAVY_QUEUE,
    metricsPort = Number(env.TEMPERED_METRICS_PORT ?? 9465),
    sdkMetricsAddress = env.TEMPERED_SDK_METRICS ?? '127.0.0.1:9464',
    cacheDir = env.TEMPERED_CACHE_DIR || join(resolveHome(env), 'cache'),
    shutdownGraceTime = '30s',
    handleSignals = true,
    heavyInChildProcess = env.TEMPERED_HEAVY_IN_PROCESS !== '1',
    log = (line: string) => process.stderr.write(`${line}\n`),
  } = options;
  if (queues.length === 0) throw new Error('worker: expected at least one of the queues io, heavy');
  // A malformed limit stops the worker here, not every activity later.
  const limits = workerLimits(env);
  const { logFile = env.TEMPERED_WORKER_LOG || undefined } = options;
  if (queues.includes('io') && queues.includes('heavy') && heavyInChildProcess) {
    return runWithHeavyChild({ ...options, ioQueue, heavyQueue, metricsPort, sdkMetricsAddress, cacheDir, log });
  }
  watchParent(options.signal);

  // The SDK's exporter and logger must exist before any connection (Runtime.install throws after).
  const logger = logFile ? fileLogger(logFile) : undefined;
  if (logFile && !env.TEMPERED_PARENT_PID) log(`worker: Temporal SDK and bundler logs go to ${logFile}`);
  if (sdkMetricsAddress) installTemporalRuntimeMetrics(sdkMetricsAddress, { logger });
  else if (logger) Runtime.install({ logger });
  const conn = resolveConnections();
  await mkdir(cacheDir, { recursive: true });
  const metrics = new WorkerMetrics();
  const metricsServer = await metrics.startMetricsServer({ port: metricsPort });

  const native = await NativeConnection.connect({ address: conn.temporal.address });
  const clientConnection = await Connection.connect({ address: conn.temporal.address });
  const client = new Client({ connection: clientConnection, namespace: conn.temporal.namespace });
  const workers: Worker[] = [];
  try {
    const version = await packageVersion();
    const deployment = deploymentFromEnv(env, version);
    const store = createObjectStore(conn.s3);
    // The heavy work's backend starts first: it decides the default cores (one on a GPU).
    const heavy = queues.includes('heavy') ? await heavyQueues(heavyQueue, options.backend, log) : undefined;
    const threads = heavy ? (options.threads ?? workerThreads(env, heavy.backend)) : 1;
    const activities = createActivities({
      store,
      cacheDir,
      metrics,
      packageVersion: version,
      maxDatasetMiB: limits.maxDatasetMiB,
      sources: { roots: limits.roots, buckets: limits.buckets, hosts: limits.hosts, httpTimeoutS: limits.httpTimeoutS },
      threads,
      signalProgress: async (workflowId, temporalRunId, progress) =>
        client.workflow.getHandle(workflowId, temporalRunId).signal(progressSignal, progress),
    });
    const common = {
      connection: native,
      namespace: conn.temporal.namespace,
      shutdownGraceTime,
      // Pinned builds: a run finishes on the build it started on (worker/deployment.ts).
      ...(deployment ? { workerDeploymentOptions: workerDeploymentOptions(deployment) } : {}),
      maxHeartbeatThrottleInterval: options.maxHeartbeatThrottleInterval ?? DEFAULT_HEARTBEAT_THROTTLE,
    };
    if (queues.includes('io')) {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: ioQueue,
          workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
          activities: activitiesFor(activities, 'io'),
        }),
      );
    }
    const names = queues.includes('io') ? [ioQueue] : [];
    if (heavy) {
      // One set of heavy activities for every heavy queue, sharing the worker's cores whichever queue a task came
      // from: an evaluation shard (on a thread of its own) and an evaluation's extras (on this thread) take one
      // each, so they run side by side; a training, or an evaluation in one piece, takes them all.
      const shared = takeTurns(activitiesFor(activities, 'heavy'), threads, (name) =>
        ONE_CORE.has(name) ? 1 : threads,
      );
      for (const taskQueue of heavy.queues) {
        workers.push(
          await Worker.create({
            ...common,
            taskQueue,
            activities: shared,
            maxConcurrentActivityTaskExecutions: threads,
          }),
        );
        names.push(taskQueue);
      }
    }
    const stop = () => {
      log('worker: draining (running activities get the shutdown grace time)');
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    };
    if (handleSignals) {
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    }
    const running = Promise.all(workers.map((w) => w.run()));
    options.signal?.addEventListener('abort', stop, { once: true });
    // Told to stop while starting (the heavy child failed to start): an abort before the listener is not replayed.
    if (options.signal?.aborted) stop();
    running.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
    if (deployment) log(`worker: ${await promoteWhenPolling(client, conn.temporal.namespace, deployment)}`);
    log(
      `worker: polling ${names.join(', ')} on ${conn.temporal.address} (namespace ${conn.temporal.namespace}); ` +
        `metrics ${metricsServer.url}${sdkMetricsAddress ? `, SDK metrics http://${sdkMetricsAddress}/metrics` : ''}`,
    );
    options.onReady?.({
      queues: names,
      metricsUrl: metricsServer.url,
      sdkMetricsAddress: sdkMetricsAddress || undefined,
      temporalAddress: conn.temporal.address,
      namespace: conn.temporal.namespace,
    });
    await running;
    if (handleSignals) {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    }
  } finally {
    await metricsServer.close();
    await clientConnection.close();
    await native.close();
  }
}

/**
 * Wraps activities so that they share `slots` in this process: each takes `need(name)` of them (at most all) while
 * it runs, in arrival order. A task that has to wait keeps heartbeating the details it started with (so a retry
 * still finds its checkpoint) and honours cancellation.
 */
export function takeTurns<T extends object>(activities: T, slots: number, need: (name: string) => number = () => 1): T {
  let used = 0;
  const waiting: { need: number; go: () => void }[] = [];
  // First come, first served: a task that needs more slots than are free holds back those behind it.
  const admit = () => {
    while (waiting.length > 0 && used + waiting[0].need <= slots) {
      const next = waiting.shift()!;
      used += next.need;
      next.go();
    }
  };
  const release = (n: number) => {
    used -= n;
    admit();
  };
  const acquire = async (n: number) => {
    if (waiting.length === 0 && used + n <= slots) {
      used += n;
      return;
    }
    const ctx = Context.current();
    const beat = setInterval(() => ctx.heartbeat(ctx.info.heartbeatDetails), 5_000);
    let go!: () => void;
    const turn = new Promise<void>((resolve) => (go = resolve));
    const entry = { need: n, go };
    waiting.push(entry);
    try {
      await Promise.race([turn, ctx.cancelled]);
    } catch (err) {
      // Cancelled while waiting: leave the line (which may let the next one in), or hand back the slots that just
      // reached us.
      const i = waiting.indexOf(entry);
      if (i >= 0) {
        waiting.splice(i, 1);
        admit();
      } else release(n);
      throw err;
    } finally {
      clearInterval(beat);
    }
  };
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    const n = Math.min(slots, Math.max(1, need(name)));
    wrapped[name] = async (...args: unknown[]) => {
      await acquire(n);
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      } finally {
        release(n);
      }
    };
  }
  return wrapped as T;
}

/** The heavy work's cores: TEMPERED_WORKER_THREADS, else this machine's (one on a GPU). */
export function workerThreads(env: NodeJS.ProcessEnv, backend: string): number {
  const raw = env.TEMPERED_WORKER_THREADS;
  if (raw === undefined || raw === '') return backend === 'tensorflow-gpu' ? 1 : availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new Error(
      `TEMPERED_WORKER_THREADS: expected a whole number of cores from 1 to 1024, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/**
 * Starts the heavy work's backend and returns it with the heavy queues to poll: `<heavyQueue>@<backend>`, and the
 * plain one unless `requested` names a backend other than this machine's best (see WorkerOptions.backend).
 */
export async function heavyQueues(
  heavyQueue: string,
  requested: string | undefined,
  log: (line: string) => void,
): Promise<{ queues: string[]; backend: string }> {
  const { initBackend } = await import('../tensor/backend/index');
  const { bestBackend } = await import('../tensor/backend/probe');
  const named = requested !== undefined && requested !== 'auto';
  const report = await initBackend((named ? requested : 'auto') as Parameters<typeof initBackend>[0], { log });
  const best = bestBackend();
  const queues = [heavyQueueFor(heavyQueue, report.name)];
  if (!named || report.name === best) queues.unshift(heavyQueue);
  else
    log(`worker: not polling ${heavyQueue} (runs with compute.backend auto): ${best} is this machine's best backend`);
  return { queues, backend: report.name };
}

/** The io queue in this process, the heavy queue in a child process running this file with `--queue heavy`. */
async function runWithHeavyChild(
  o: WorkerOptions & Required<Pick<WorkerOptions, 'ioQueue' | 'heavyQueue' | 'metricsPort' | 'cacheDir' | 'log'>>,
): Promise<void> {
  const shift = (address: string | false | undefined, by: number) => {
    if (!address) return '';
    const [host, port] = address.split(/:(?=\d+$)/);
    return `${host}:${Number(port) + by}`;
  };
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--queue',
      'heavy',
      ...(o.backend ? ['--backend', o.backend] : []),
    ],
    {
      env: {
        ...process.env,
        TEMPERED_IO_QUEUE: o.ioQueue,
        TEMPERED_HEAVY_QUEUE: o.heavyQueue,
        TEMPERED_METRICS_PORT: String(o.metricsPort === 0 ? 0 : o.metricsPort + 1),
        TEMPERED_SDK_METRICS: shift(o.sdkMetricsAddress ?? env.TEMPERED_SDK_METRICS ?? '127.0.0.1:9464', 3),
        TEMPERED_CACHE_DIR: o.cacheDir,
        ...(o.threads ? { TEMPERED_WORKER_THREADS: String(o.threads) } : {}),
        TEMPERED_PARENT_PID: String(process.pid),
        ...(o.logFile || env.TEMPERED_WORKER_LOG ? { TEMPERED_WORKER_LOG: o.logFile || env.TEMPERED_WORKER_LOG } : {}),
        ...(o.maxHeartbeatThrottleInterval ? { TEMPERED_HEARTBEAT_THROTTLE: o.maxHeartbeatThrottleInterval } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let heavyReady!: () => void;
  let heavyNames = [o.heavyQueue];
  const ready = new Promise<void>((r) => (heavyReady = r));
  const logFile = o.logFile || env.TEMPERED_WORKER_LOG;
  const forward = (data: Buffer) => {
    for (const line of data.toString().split('\n')) {
      if (line === '') continue;
      if (logFile && TENSORFLOW_NOTICE.test(line)) {
        appendFileSync(logFile, `[heavy] ${line}\n`);
        continue;
      }
      if (line.startsWith('worker: polling')) {
        heavyNames = line
          .replace(/^worker: polling /, '')
          .split(' on ')[0]
          .split(', ');
        heavyReady();
      }
      o.log(`[heavy] ${line}`);
    }
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  const childExit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const abort = new AbortController();
  let stopping = false;
  const stopAll = () => {
    stopping = true;
    abort.abort();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  o.signal?.addEventListener('abort', stopAll, { once: true });
  if (o.handleSignals ?? true) {
    process.once('SIGTERM', stopAll);
    process.once('SIGINT', stopAll);
  }
  void childExit.then((code) => {
    if (!stopping) {
      o.log(`worker: the heavy worker process exited (${code}); stopping the io worker too`);
      process.exitCode = 1;
      stopAll();
    }
  });
  let ioInfo: WorkerReady | undefined;
  try {
    await Promise.all([
      runWorker({
        ...o,
        queues: ['io'],
        handleSignals: false,
        signal: abort.signal,
        onReady: (info) => {
          ioInfo = info;
          void ready.then(() => o.onReady?.({ ...info, queues: [o.ioQueue, ...heavyNames] }));
        },
      }),
      childExit,
    ]);
  } finally {
    stopAll();
    await childExit;
    process.off('SIGTERM', stopAll);
    process.off('SIGINT', stopAll);
  }
  void ioInfo;
}

/** A heavy worker started by `runWithHeavyChild` stops when its parent is gone (even after a SIGKILL). */
function watchParent(signal?: AbortSignal): void {
  const parent = Number(env.TEMPERED_PARENT_PID);
  if (!parent) return;
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 2_000);
  timer.unref();
  signal?.addEventListener('abort', () => clearInterval(timer), { once: true });
}

/** Promotes this build (per TEMPERED_PROMOTE_BUILD) once the server has seen its pollers; retried for 30 s. */
async function promoteWhenPolling(client: Client, namespace: string, d: DeploymentSettings): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await promoteBuild(client, namespace, d);
    } catch (err) {
      if (attempt >= 30) return `build ${d.buildId} could not be promoted: ${(err as Error).message}`;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** `tsx worker/main.ts [--queue io|heavy]`: the worker as its own process (the CLI's `tempered worker` too). */
const isEntry = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isEntry) {
  const args = process.argv.slice(2);
  const q = args.indexOf('--queue');
  const queues = q >= 0 ? ([args[q + 1]] as QueueRole[]) : undefined;
  const b = args.indexOf('--backend');
  const backend = b >= 0 ? args[b + 1] : undefined;
  const throttle = process.env.TEMPERED_HEARTBEAT_THROTTLE;
  runWorker({
    queues,
    ...(backend ? { backend } : {}),
    ...(throttle ? { maxHeartbeatThrottleInterval: throttle } : {}),
  }).catch((err: unknown) => {
    process.stderr.write(`worker: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
