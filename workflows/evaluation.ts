/**
 * `evaluation`: one evaluation (the baseline's or the hardened model's) as a child workflow of `hardeningRun`.
 * Splits the test images into shards of `evaluation.shardImages`, runs each as an `evaluateShard` activity on the
 * heavy queue with at most `evaluation.maxConcurrentShards` in flight (so N heavy workers finish about N× sooner),
 * runs `evaluationExtras` beside them, and reduces the per-example results with `reduceEvaluation`.
 *
 * A shard heartbeats its attack, batch and per-example flags: a shard whose worker dies is retried on any heavy
 * worker after the heartbeat timeout and resumes where it was. Deterministic orchestration only.
 */
import { patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/contract';
import { allFailures } from '../schemas/failures';
import type { EvaluateInput, EvaluateShardRef, Metrics, SpecFor } from '../schemas/payloads';
import { evaluatedImages } from '../schemas/spec';
import { evaluationProgressQuery } from './messages';
import { DEFAULT_PROGRESS_RETRY, lastHeartbeatDetails, retryWhileProgressing } from './progress-retry';

/** The shards of `images` test images: consecutive ranges of at most `shardImages`. */
export function planShards(images: number, shardImages: number): { index: number; start: number; count: number }[] {
  const shards = [];
  for (let start = 0, index = 0; start < images; start += shardImages, index++)
    shards.push({ index, start, count: Math.min(shardImages, images - start) });
  return shards;
}

/** The child's input: one evaluation, and the heavy queue the parent resolved (`compute.heavyQueue` when absent). */
export type EvaluationInput = EvaluateInput & { heavyQueue?: string };

function proxies(spec: SpecFor<'evaluation'>, heavyQueue: string) {
  const { ioQueue, evaluationTimeout, evaluationHeartbeatTimeout } = spec.compute;
  const retry = { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2 minutes' };
  const heavy = proxyActivities<Activities>({
    taskQueue: heavyQueue,
    startToCloseTimeout: evaluationTimeout,
    heartbeatTimeout: evaluationHeartbeatTimeout,
    retry: { ...retry, maximumAttempts: 5, nonRetryableErrorTypes: [...allFailures] },
  });
  const io = proxyActivities<Activities>({
    taskQueue: ioQueue,
    startToCloseTimeout: '10 minutes',
    retry: { ...retry, maximumAttempts: 8, nonRetryableErrorTypes: [...allFailures] },
  });
  // One attempt at a time: the workflow retries a shard while its attempts progress (retryWhileProgressing).
  const heavyOnce = proxyActivities<Activities>({
    taskQueue: heavyQueue,
    startToCloseTimeout: evaluationTimeout,
    heartbeatTimeout: evaluationHeartbeatTimeout,
    retry: { maximumAttempts: 1, nonRetryableErrorTypes: [...allFailures] },
  });
  return {
    evaluateShard: heavy.evaluateShard,
    evaluateShardOnce: heavyOnce.evaluateShard,
    evaluationExtras: heavy.evaluationExtras,
    reduce: io.reduceEvaluation,
  };
}

/**
 * How far a shard got, from the heartbeat its killed attempt left: phases done, then the attack and batch inside
 * the current one (monotonic while the shard moves on).
 */
export function shardCursor(details: unknown): number | undefined {
  const beat = details as { phase?: unknown; state?: { attack?: unknown; batch?: unknown } } | undefined;
  if (typeof beat?.phase !== 'number') return undefined;
  const attack = typeof beat.state?.attack === 'number' ? beat.state.attack : 0;
  const batch = typeof beat.state?.batch === 'number' ? beat.state.batch : 0;
  return beat.phase * 1e9 + attack * 1e6 + batch;
}

export async function evaluation({ heavyQueue, ...input }: EvaluationInput): Promise<Metrics> {
  const { spec } = input;
  const act = proxies(spec, heavyQueue ?? spec.compute.heavyQueue);
  const started = workflowInfo().runStartTime.getTime();
  const shards = planShards(evaluatedImages(spec, input.dataset.counts.test), spec.evaluation.shardImages);
  const done: EvaluateShardRef[] = new Array(shards.length);
  // Read-only, so it adds nothing to the history: clients follow the shards without touching the run.
  setHandler(evaluationProgressQuery, () => {
    const finished = done.filter((r) => r !== undefined);
    return {
      role: input.role,
      images: shards.reduce((a, s) => a + s.count, 0),
      shards: shards.length,
      shardsDone: finished.length,
      imagesDone: finished.reduce((a, r) => a + r.count, 0),
    };
  });
  // A shard killed any number of times finishes while its attempts progress (as training does).
  const progressAware = patched('progress-aware-shards');
  let next = 0;
  // A sliding window: each lane takes the next shard as soon as its last one finished.
  const lane = async () => {
    while (next < shards.length) {
      const shard = shards[next++];
      // The killed attempt's heartbeat, handed to the next attempt (a new activity inherits none).
      let resume: unknown;
      done[shard.index] = progressAware
        ? await retryWhileProgressing({
            what: `${input.role} evaluation shard ${shard.index}`,
            policy: { ...DEFAULT_PROGRESS_RETRY, maxAttemptsWithoutProgress: spec.compute.maxAttemptsWithoutProgress },
            cursor: (err) => {
              const beat = lastHeartbeatDetails(err);
              const at = shardCursor(beat);
              if (at !== undefined && at >= (shardCursor(resume) ?? -1)) resume = beat;
              return at;
            },
            attempt: () => act.evaluateShardOnce({ ...input, spec, shard, ...(resume ? { resume } : {}) }),
          })
        : await act.evaluateShard({ ...input, spec, shard });
    }
  };
  const lanes = Array.from({ length: Math.min(spec.evaluation.maxConcurrentShards, shards.length) }, lane);
  const [extras] = await Promise.all([act.evaluationExtras({ ...input, spec }), ...lanes]);
  // Workflow time: the time of the current workflow task, deterministic on replay.
  const seconds = (new Date().getTime() - started) / 1000;
  return act.reduce({ ...input, spec, shards: done, extras, seconds });
}
