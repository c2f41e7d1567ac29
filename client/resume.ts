/**
 * `resumeHardeningRun`: continue a run that failed, was cancelled or timed out, in a new execution of the same
 * workflow id. What the earlier execution finished is read from its history and handed to the new one, which
 * does not run those stages again: the dataset, the baseline model and the baseline metrics. Training continues
 * from the newest valid checkpoint of the earlier execution (or of the one that one resumed, and so on).
 *
 * ```ts
 * const run = await resumeHardeningRun(client, 'harden-classifier-20260101-020000');
 * const summary = await run.result(); // summary.resumedFrom, summary.reused
 * ```
 */
import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type proto from '@temporalio/proto';
import { DatasetRef, Metrics, PreparedModel, ResumeFrom, RunSummary } from '../schemas/payloads';
import type { EvaluationRole, ExecutionRef, Stage } from '../schemas/payloads';
import { parseSpec } from '../schemas/spec';
import { HARDENING_RUN } from '../workflows/messages';
import { RunAlreadyStartedError, getHardeningRun } from './index';
import type { HardeningRunHandle } from './index';

/** The run cannot be resumed: it is running, it completed, or its history is not a hardening run's. */
export class NotResumableError extends Error {
  override name = 'NotResumableError';
}

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

/** The new execution, with what it takes over from the earlier one. */
export interface ResumedRun extends HardeningRunHandle {
  resumedFrom: ExecutionRef;
  /** Stages the new execution does not run again. */
  reused: Stage[];
}

export interface ResumeOptions {
  /** The queue whose worker runs the workflow. Default: the earlier run's. */
  taskQueue?: string;
}

/**
 * Starts a new execution of `workflowId` that continues its latest one. Refuses (`NotResumableError`) a run that
 * is still running or that completed (a summary with status completed or rejected); a run that ended
 * `cancelled` through the cancel signal is resumable.
 */
export async function resumeHardeningRun(
  client: Client,
  workflowId: string,
  options: ResumeOptions = {},
): Promise<ResumedRun> {
  const earlier = client.workflow.getHandle(workflowId);
  const description = await earlier.describe();
  const status = description.status.name;
  if (description.type !== HARDENING_RUN)
    throw new NotResumableError(`${workflowId} is a ${description.type} workflow, not a ${HARDENING_RUN}`);
  if (status === 'RUNNING') throw new NotResumableError(`${workflowId} is still running; nothing to resume`);
  if (status === 'COMPLETED') {
    const summary = RunSummary.safeParse(await earlier.result());
    if (!summary.success || summary.data.status !== 'cancelled') {
      const how = summary.success ? summary.data.status : 'with a result that is not a run summary';
      throw new NotResumableError(
        `${workflowId} completed (${how}); only a failed, cancelled or timed-out run can be resumed: start a new ` +
          'run instead (tempered run)',
      );
    }
  }
  const from: ExecutionRef = { workflowId, temporalRunId: description.runId };
  const events = (await earlier.fetchHistory()).events ?? [];
  const decode = decoder(client);
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  const args = started ? await decode(started.input?.payloads) : [];
  const spec = parseSpec(args[0]);
  const before = args[1] === undefined ? undefined : ResumeFrom.parse(args[1]);
  const done = await completedActivities(events, decode);

  // Each stage's output is reused only with the one it was made from (the model from this dataset, and so on).
  const dataset = done.fetchDataset ? DatasetRef.parse(done.fetchDataset) : before?.dataset;
  const prepared = !dataset ? undefined : done.prepareModel ? PreparedModel.parse(done.prepareModel) : before?.prepared;
  const earlierBaseline = done.baselineEval ?? (await fannedOutEvaluations(events, decode)).baseline;
  const baseline = !prepared ? undefined : earlierBaseline ? Metrics.parse(earlierBaseline) : before?.baseline;
  const resume: ResumeFrom = {
    from,
    checkpointsOf: [from, ...(before?.checkpointsOf ?? [])],
    ...(dataset ? { dataset } : {}),
    ...(prepared ? { prepared } : {}),
    ...(baseline ? { baseline } : {}),
  };
  const memo = (description.memo ?? {}) as Record<string, unknown>;
  try {
    await client.workflow.start(HARDENING_RUN, {
      workflowId,
      taskQueue: options.taskQueue ?? description.taskQueue,
      args: [spec, resume],
      workflowIdConflictPolicy: 'FAIL',
      memo: { ...memo, resumedFrom: from },
    });
  } catch (err) {
    if ((err as Error).name === 'WorkflowExecutionAlreadyStartedError')
      throw new RunAlreadyStartedError(workflowId, { cause: err });
    throw err;
  }
  const reused: Stage[] = [];
  if (dataset) reused.push('fetching-dataset');
  if (prepared) reused.push('preparing-model');
  if (baseline) reused.push('baseline-eval');
  return { ...getHardeningRun(client, workflowId), resumedFrom: from, reused };
}

/** Decodes payloads with the client's data converter (codecs, then the payload converter). */
function decoder(client: Client) {
  const { payloadConverter, payloadCodecs } = client.options.loadedDataConverter;
  return async (payloads: Payload[] | null | undefined): Promise<unknown[]> => {
    let list = (payloads ?? []) as Payload[];
    for (const codec of [...payloadCodecs].reverse()) list = await codec.decode(list);
    return list.map((p) => payloadConverter.fromPayload(p));
  };
}

/** The result of the last completed execution of each activity type, by type name. */
async function completedActivities(
  events: HistoryEvent[],
  decode: (p: Payload[] | null | undefined) => Promise<unknown[]>,
): Promise<Record<string, unknown>> {
  const typeOf = new Map<string, string>();
  const out: Record<string, unknown> = {};
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name) typeOf.set(String(e.eventId), scheduled.activityType.name);
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) {
      const type = typeOf.get(String(completed.scheduledEventId));
      if (type) out[type] = (await decode(completed.result?.payloads))[0];
    }
  }
  return out;
}

/**
 * The metrics of each role's fanned-out evaluation (runs since the evaluation fan-out): a completed evaluation child
 * workflow (`<role>-evaluation-…`), or a step-cache hit (`lookupEvaluation` with a result) that stood in for one.
 */
async function fannedOutEvaluations(
  events: HistoryEvent[],
  decode: (p: Payload[] | null | undefined) => Promise<unknown[]>,
): Promise<Partial<Record<EvaluationRole, unknown>>> {
  const out: Partial<Record<EvaluationRole, unknown>> = {};
  const roleOf = (id: string | null | undefined) =>
    /(^|-)baseline-evaluation/.test(id ?? '')
      ? 'baseline'
      : /(^|-)hardened-evaluation/.test(id ?? '')
        ? 'hardened'
        : undefined;
  const lookups = new Map<string, EvaluationRole>();
  for (const e of events) {
    const child = e.childWorkflowExecutionCompletedEventAttributes;
    const role = child ? roleOf(child.workflowExecution?.workflowId) : undefined;
    if (child && role) out[role] = (await decode(child.result?.payloads))[0];
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === 'lookupEvaluation') {
      const input = (await decode(scheduled.input?.payloads))[0] as { role?: EvaluationRole } | undefined;
      if (input?.role) lookups.set(String(e.eventId), input.role);
    }
    const completed = e.activityTaskCompletedEventAttributes;
    const lookupRole = completed ? lookups.get(String(completed.scheduledEventId)) : undefined;
    if (completed && lookupRole) {
      const hit = (await decode(completed.result?.payloads))[0];
      if (hit) out[lookupRole] = hit;
    }
  }
  return out;
}
