/**
 * Live progress of a run, for the people following it: the run's `progress` query, plus the two long stages it
 * cannot report itself without writing to its history on every batch. A baseline being trained heartbeats its
 * position; an evaluation child answers which shards are finished, and its running shards heartbeat their attack
 * and how far into it they are. Everything here is read-only: describe and query, never a signal.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { ShardProgress, TrainProgress } from '../schemas/payloads';
import type { EvaluationProgress, EvaluationShards, LiveProgress } from '../schemas/payloads';
import { evaluationProgressQuery, progressQuery } from '../workflows/messages';

type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

/** Finished shards plus the running shards' share: how many images the evaluation has done, about. */
export function estimateEvaluation(
  shards: EvaluationShards,
  running: ShardProgress[],
  elapsed: number,
): EvaluationProgress {
  const inFlight = running.reduce((a, p) => a + p.images * p.fraction, 0);
  return {
    ...shards,
    imagesEstimate: Math.min(shards.images, shards.imagesDone + inFlight),
    attacks: [...new Set(running.map((p) => p.attack).filter(Boolean))],
    elapsed,
  };
}

/** The first heartbeat payload of a pending activity, decoded; undefined when it has none yet. */
function heartbeatOf(activity: PendingActivity): unknown {
  const payload = activity.heartbeatDetails?.payloads?.[0];
  if (!payload) return undefined;
  try {
    return defaultPayloadConverter.fromPayload(payload);
  } catch {
    return undefined;
  }
}

/** A field of a heartbeat, parsed with its schema; undefined when absent or of another shape. */
function heartbeatField<T>(activity: PendingActivity, schema: { safeParse(v: unknown): { data?: T } }): T | undefined {
  const beat = heartbeatOf(activity) as { progress?: unknown } | undefined;
  return beat?.progress === undefined ? undefined : schema.safeParse(beat.progress).data;
}

/** Where an `evaluation` child workflow stands; undefined when it does not answer (not started yet, or over). */
export async function evaluationProgress(handle: WorkflowHandle): Promise<EvaluationProgress | undefined> {
  try {
    const [shards, described] = await Promise.all([handle.query(evaluationProgressQuery), handle.describe()]);
    const running = (described.raw.pendingActivities ?? [])
      .map((a) => heartbeatField(a, ShardProgress))
      .filter((p): p is ShardProgress => p !== undefined);
    const elapsed = Math.max(0, (Date.now() - described.startTime.getTime()) / 1000);
    return estimateEvaluation(shards, running, elapsed);
  } catch {
    return undefined;
  }
}

/**
 * The run's `progress` query, with the baseline's training position while one is trained and the evaluation's
 * shards while one runs. The extras are left out, never an error, when they cannot be read.
 */
export async function liveProgress(handle: WorkflowHandle): Promise<LiveProgress> {
  const progress = await handle.query(progressQuery);
  if (progress.stage !== 'preparing-model' && progress.stage !== 'baseline-eval' && progress.stage !== 'benchmark')
    return progress;
  let described: Awaited<ReturnType<WorkflowHandle['describe']>>;
  try {
    described = await handle.describe();
  } catch {
    return progress;
  }
  if (progress.stage === 'preparing-model') {
    const training = (described.raw.pendingActivities ?? [])
      .map((a) => heartbeatField(a, TrainProgress))
      .find((p) => p !== undefined);
    return training ? { ...progress, baselineTraining: training } : progress;
  }
  const child = described.raw.pendingChildren?.at(-1)?.workflowId;
  if (!child) return progress;
  const evaluation = await evaluationProgress(handle.client.getHandle(child));
  return evaluation ? { ...progress, evaluation } : progress;
}
