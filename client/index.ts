/**
 * The client SDK: how a release pipeline (or the CLI) starts, watches and steers `hardeningRun`. The spec is
 * validated here, at the edge, so a bad spec fails before anything reaches Temporal.
 *
 * ```ts
 * const client = await connectClient();
 * const run = await startHardeningRun(client, await loadSpec('spec.yaml'));
 * const summary = await run.result();
 * ```
 */
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type { UpdateDefinition, WorkflowExecutionInfo, WorkflowHandle } from '@temporalio/client';
import { readState, resolveConnections, resolveHome, stackPaths } from '../infra/config';
import type { Connections, ResolveConnectionsOptions } from '../infra/config';
import type { LiveProgress, RunProgress, RunSummary } from '../schemas/payloads';
import { parseSpec } from '../schemas/spec';
import type { Spec } from '../schemas/spec';
import { HARDENING_RUN, approveUpdate, cancelUpdate, progressQuery, rejectUpdate } from '../workflows/messages';
import type { DecisionOutcome } from '../workflows/messages';
import { liveProgress } from './progress';

export type { DecisionOutcome };

export { SpecError } from '../schemas/spec';

export interface ConnectClientOptions extends ResolveConnectionsOptions {
  /** Temporal frontend `host:port`. Default: TEMPORAL_ADDRESS, else the local stack (`tempered up`). */
  address?: string;
  /** Default: TEMPORAL_NAMESPACE, else the local stack's, else `default`. */
  namespace?: string;
}

/**
 * Connects to Temporal (address and namespace from the options, the env or the running local stack) and returns
 * a `Client`. Close it with `await client.connection.close()`.
 */
export async function connectClient(options: ConnectClientOptions = {}): Promise<Client> {
  const { address, namespace, ...resolve } = options;
  const temporal = address
    ? { address, namespace: namespace ?? (options.env ?? process.env).TEMPORAL_NAMESPACE ?? 'default' }
    : resolveTemporal(resolve, namespace);
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: temporal.address });
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${temporal.address}: ${(err as Error).message.split('\n')[0]}`, {
      cause: err,
    });
  }
  return new Client({ connection, namespace: temporal.namespace });
}

function resolveTemporal(options: ResolveConnectionsOptions, namespace?: string): Connections['temporal'] {
  // Only Temporal is needed here: a missing S3 setting must not stop a client from connecting.
  // Placeholders fill the S3 settings only where none are given; the S3 part of the answer is not used.
  const base = options.env ?? process.env;
  const env = { S3_ENDPOINT: 'http://s3.invalid:1', S3_ACCESS_KEY: '-', S3_SECRET_KEY: '-', ...base };
  const conn = resolveConnections({ ...options, env });
  return { address: conn.temporal.address, namespace: namespace ?? conn.temporal.namespace };
}

/**
 * The Temporal Web UI's base URL: TEMPORAL_UI_URL; else the local stack's UI; else the dev server's convention
 * (gRPC port + 1000) on the same host.
 */
export function temporalUiUrl(address: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_UI_URL) return env.TEMPORAL_UI_URL.replace(/\/+$/, '');
  const state = readState(stackPaths(resolveHome(env)));
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  if (state && state.ports.temporal === port && /^(127\.0\.0\.1|localhost)$/.test(host)) {
    return `http://127.0.0.1:${state.ports.temporalUi}`;
  }
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port + 1000}`;
}

/** The link to one workflow in the Temporal Web UI. */
export function workflowUiLink(uiUrl: string, namespace: string, workflowId: string): string {
  return `${uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** `harden-<modelName>-<YYYYMMDD-HHmmss>` (UTC): meaningful, so the same run submitted twice is refused. */
export function defaultWorkflowId(modelName: string, at: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const date = `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}`;
  const time = `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`;
  return `harden-${modelName}-${date}-${time}`;
}

/** A started (or found) hardening run. */
export interface HardeningRunHandle {
  workflowId: string;
  /** Temporal's run id of the first execution (`undefined` for a handle obtained by id only). */
  temporalRunId: string | undefined;
  /** Resolves with the run's `RunSummary` (completed, rejected or cancelled); rejects when the workflow failed. */
  result(): Promise<RunSummary>;
  /** The `progress` query: stage, training position, metrics so far, gate state. */
  progress(): Promise<RunProgress>;
  /** `progress()` plus the baseline's training position and the running evaluation's shards (`client/progress`). */
  liveProgress(): Promise<LiveProgress>;
  /**
   * Graceful stop (the `cancelRun` update): the run writes a last checkpoint and returns `cancelled`. Resolves
   * once the run has taken the request; a run that cannot (ended, or already promoting) rejects with
   * DecisionRefusedError and the reason.
   */
  cancel(reason?: string, by?: string): Promise<DecisionOutcome>;
  /** Approves a run waiting for approval; DecisionRefusedError (`not awaiting approval: stage …`) otherwise. */
  approve(by: string, reason?: string): Promise<DecisionOutcome>;
  /** Rejects a run waiting for approval; DecisionRefusedError otherwise. */
  reject(by: string, reason?: string): Promise<DecisionOutcome>;
  /** The underlying Temporal handle (describe, terminate, history). */
  temporal: WorkflowHandle;
}

export interface StartOptions {
  /** Default `harden-<modelName>-<YYYYMMDD-HHmmss>`. A running workflow with this id makes the start fail. */
  workflowId?: string;
  /** The queue whose worker runs the workflow. Default `spec.compute.ioQueue` (the io worker registers it). */
  taskQueue?: string;
  /** Resolve only once the run has ended (the handle's `result()` is then already settled). Default false. */
  wait?: boolean;
}

/** A workflow id is already in use by a running workflow. */
export class RunAlreadyStartedError extends Error {
  override name = 'RunAlreadyStartedError';
  constructor(
    readonly workflowId: string,
    options?: { cause?: unknown },
  ) {
    super(`workflow id ${workflowId} is already running; pass another id (--id) or wait for it to end`, options);
  }
}

/** A run refused a decision (approve, reject or cancel); the message is the run's reason. */
export class DecisionRefusedError extends Error {
  override name = 'DecisionRefusedError';
}

/** Runs a decision update; the validator's refusal becomes a DecisionRefusedError with its reason. */
async function decision<A extends [unknown]>(
  handle: WorkflowHandle,
  update: UpdateDefinition<DecisionOutcome, A>,
  args: A,
): Promise<DecisionOutcome> {
  try {
    return await handle.executeUpdate(update, { args });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError)
      throw new DecisionRefusedError((err.cause as Error | undefined)?.message ?? err.message, { cause: err });
    throw err;
  }
}

function wrap(handle: WorkflowHandle, temporalRunId: string | undefined): HardeningRunHandle {
  let result: Promise<RunSummary> | undefined;
  const need = (name: string, value: string) => {
    if (typeof value !== 'string' || value.trim() === '') throw new Error(`${name}: expected a non-empty name`);
  };
  return {
    workflowId: handle.workflowId,
    temporalRunId,
    result: () => (result ??= handle.result() as Promise<RunSummary>),
    progress: () => handle.query(progressQuery),
    liveProgress: () => liveProgress(handle),
    cancel: (reason, by) => decision(handle, cancelUpdate, [{ reason, by }]),
    async approve(by, reason) {
      need('by', by);
      return decision(handle, approveUpdate, [{ by, reason }]);
    },
    async reject(by, reason) {
      need('by', by);
      return decision(handle, rejectUpdate, [{ by, reason }]);
    },
    temporal: handle,
  };
}

/**
 * Validates `spec` (a `SpecError` lists every problem) and starts `hardeningRun` with it. Refuses (with
 * `RunAlreadyStartedError`) when a workflow with the same id is still running.
 */
export async function startHardeningRun(
  client: Client,
  spec: unknown,
  options: StartOptions = {},
): Promise<HardeningRunHandle> {
  const parsed: Spec = parseSpec(spec);
  const { workflowId = defaultWorkflowId(parsed.artifacts.modelName), taskQueue = parsed.compute.ioQueue } = options;
  if (!/^[\x21-\x7e]{1,255}$/.test(workflowId)) {
    throw new Error(
      `workflowId: expected 1-255 printable characters without spaces, got ${JSON.stringify(workflowId)}`,
    );
  }
  let handle: Awaited<ReturnType<Client['workflow']['start']>>;
  try {
    handle = await client.workflow.start(HARDENING_RUN, {
      workflowId,
      taskQueue,
      args: [parsed],
      workflowIdConflictPolicy: 'FAIL',
      memo: {
        modelName: parsed.artifacts.modelName,
        ...(parsed.description ? { description: parsed.description } : {}),
      },
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new RunAlreadyStartedError(workflowId, { cause: err });
    throw err;
  }
  const run = wrap(handle, handle.firstExecutionRunId);
  if (options.wait) await run.result();
  return run;
}

/** A handle on an existing run by workflow id (the latest execution). Does no I/O. */
export function getHardeningRun(client: Client, workflowId: string): HardeningRunHandle {
  if (typeof workflowId !== 'string' || workflowId === '') throw new Error('workflowId: expected a workflow id');
  return wrap(client.workflow.getHandle(workflowId), undefined);
}

/** One run as visibility lists it. */
export interface RunListing {
  workflowId: string;
  temporalRunId: string;
  /** RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, CONTINUED_AS_NEW, TIMED_OUT. */
  status: string;
  taskQueue: string;
  startTime: Date;
  closeTime?: Date;
  modelName?: string;
}

export function toListing(info: WorkflowExecutionInfo): RunListing {
  const memo = (info.memo ?? {}) as { modelName?: unknown };
  return {
    workflowId: info.workflowId,
    temporalRunId: info.runId,
    status: info.status.name,
    taskQueue: info.taskQueue,
    startTime: info.startTime,
    closeTime: info.closeTime,
    modelName: typeof memo.modelName === 'string' ? memo.modelName : undefined,
  };
}

/** The most recent hardening runs (newest first), at most `limit` (default 20). */
export async function listRuns(
  client: Client,
  options: { limit?: number; query?: string } = {},
): Promise<RunListing[]> {
  const { limit = 20 } = options;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`limit: expected a positive integer, got ${limit}`);
  const query = `WorkflowType = '${HARDENING_RUN}'${options.query ? ` AND (${options.query})` : ''}`;
  const out: RunListing[] = [];
  for await (const info of client.workflow.list({ query, pageSize: Math.min(limit, 100) })) {
    out.push(toListing(info));
    if (out.length >= limit) break;
  }
  return out;
}

/** A task queue and which of its sides a worker must poll: workflow tasks, activity tasks or both. */
export interface PolledQueue {
  name: string;
  kinds: ('workflow' | 'activity')[];
}

/**
 * The queues no worker polls right now (Temporal's DescribeTaskQueue: pollers seen in the last minutes), as
 * `<queue> (<kind>)` strings; empty when every queue has a worker. A run on such a queue waits until one starts.
 */
export async function queuesWithoutWorkers(client: Client, queues: PolledQueue[]): Promise<string[]> {
  const TYPE = { workflow: 1, activity: 2 } as const; // temporal.api.enums.v1.TaskQueueType
  const missing: string[] = [];
  for (const q of queues) {
    for (const kind of q.kinds) {
      const { pollers } = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: q.name },
        taskQueueType: TYPE[kind],
      });
      if (!pollers?.length) missing.push(`${q.name} (${kind} tasks)`);
    }
  }
  return missing;
}
