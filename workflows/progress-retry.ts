/**
 * Progress-aware retries, for any long activity that records how far it got (a checkpoint cursor).
 *
 * Temporal's own retry policy counts every attempt, progress or not, and grows the backoff on each failure: a
 * training run on preemptible machines then dies at the N-th preemption although every attempt moved on. Here
 * the activity is scheduled with `maximumAttempts: 1` and the workflow decides: after a failed attempt it asks
 * `cursor(err)` how far the work got; an attempt that advanced the cursor does not spend the budget and the
 * backoff starts again from `initialInterval`; only `maxAttemptsWithoutProgress` failures in a row without
 * progress fail the run, with a `NoProgress` failure that says so. Permanent failures (non-retryable, or a type
 * of the vocabulary) and cancellation are rethrown at once.
 *
 * Adopting it for another activity (e.g. an evaluation shard):
 * 1. Give the activity a proxy with `retry: { maximumAttempts: 1, nonRetryableErrorTypes: [...allFailures] }`.
 * 2. Make the activity store its progress durably (a checkpoint, a finished-shard marker) and resume from it, and
 *    report a monotonic cursor: in its heartbeat details (read back from the failure with
 *    `lastHeartbeatDetails(err)`) and/or through a signal the workflow keeps in its state.
 * 3. Call it inside the stage:
 * ```ts
 * const shard = await retryWhileProgressing({
 *   what: `benchmark shard ${i}`,
 *   policy: { ...DEFAULT_PROGRESS_RETRY, maxAttemptsWithoutProgress: spec.compute.maxAttemptsWithoutProgress },
 *   cursor: (err) => (lastHeartbeatDetails(err) as { done?: number } | undefined)?.done,
 *   attempt: () => evaluationOnce.benchmarkShard(input),
 * });
 * ```
 * Scheduling more commands than before changes histories: guard the switch with `patched()`.
 *
 * Deterministic (workflow code): the only waiting is `sleep`, the only state is the cursor and the counter.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  isCancellation,
  log,
  patched,
  sleep,
} from '@temporalio/workflow';
import { Failure, isFailure } from '../schemas/failures';

export interface ProgressRetryPolicy {
  /** Failed attempts in a row that did not advance the cursor before the work fails (NoProgress). */
  maxAttemptsWithoutProgress: number;
  /** Wait before the first retry, and again after every attempt that made progress. */
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  /**
   * Failures because a service did not answer (the object store restarting) are not the work's fault: they wait
   * and retry without spending `maxAttemptsWithoutProgress`, for at most this long in all (then the run fails).
   */
  maxUnavailableMs: number;
}

export const DEFAULT_PROGRESS_RETRY: ProgressRetryPolicy = {
  maxAttemptsWithoutProgress: 3,
  initialIntervalMs: 2_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 5 * 60_000,
  maxUnavailableMs: 15 * 60_000,
};

/** Failure types that mean a service did not answer, not that the attempt's work failed. */
export const UNAVAILABLE_TYPES: ReadonlySet<string> = new Set(['ObjectStoreUnavailable']);

/** True when a failure (or a cause of it) says a service did not answer. */
export function isUnavailable(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause)
    if (e instanceof ApplicationFailure && e.type && UNAVAILABLE_TYPES.has(e.type)) return true;
  return false;
}

/** What to do after a failed attempt. */
export type RetryDecision =
  | { retry: true; progressed: boolean; delayMs: number; stalled: number }
  | { retry: false; progressed: false; stalled: number };

/**
 * The bookkeeping, apart from any Temporal API so it can be tested on its own: the best cursor seen, how many
 * failures in a row did not beat it, and the backoff that follows.
 */
export class ProgressBudget {
  private best: number | undefined;
  private stalledInRow = 0;
  private attempts = 0;
  private unavailableInRow = 0;
  private unavailableWaitedMs = 0;

  constructor(
    readonly policy: ProgressRetryPolicy,
    start?: number,
  ) {
    if (!(policy.maxAttemptsWithoutProgress >= 1)) throw new RangeError('maxAttemptsWithoutProgress must be >= 1');
    this.best = start;
  }

  /** The highest cursor seen so far (undefined before any progress was reported). */
  get cursor(): number | undefined {
    return this.best;
  }

  /** Attempts that failed so far. */
  get failures(): number {
    return this.attempts;
  }

  /**
   * Records a failed attempt after which the work stands at `cursor` (undefined: unknown); `unavailable` when it
   * failed because a service did not answer (see {@link ProgressRetryPolicy.maxUnavailableMs}).
   */
  afterFailure(cursor: number | undefined, unavailable = false): RetryDecision {
    this.attempts++;
    const progressed = cursor !== undefined && (this.best === undefined || cursor > this.best);
    if (progressed) {
      this.best = cursor;
      this.stalledInRow = 0;
      this.unavailableInRow = 0;
      return { retry: true, progressed: true, delayMs: this.policy.initialIntervalMs, stalled: 0 };
    }
    if (unavailable) {
      const delayMs = this.backoff(++this.unavailableInRow);
      if (this.unavailableWaitedMs + delayMs > this.policy.maxUnavailableMs)
        return { retry: false, progressed: false, stalled: this.stalledInRow };
      this.unavailableWaitedMs += delayMs;
      return { retry: true, progressed: false, delayMs, stalled: this.stalledInRow };
    }
    this.unavailableInRow = 0;
    this.stalledInRow++;
    if (this.stalledInRow >= this.policy.maxAttemptsWithoutProgress)
      return { retry: false, progressed: false, stalled: this.stalledInRow };
    return { retry: true, progressed: false, delayMs: this.backoff(this.stalledInRow), stalled: this.stalledInRow };
  }

  /** The wait after the k-th failure in a row (k ≥ 1): initial × coefficient^(k−1), capped. */
  private backoff(k: number): number {
    const { initialIntervalMs, backoffCoefficient, maximumIntervalMs } = this.policy;
    return Math.min(maximumIntervalMs, initialIntervalMs * backoffCoefficient ** (k - 1));
  }

  /** Milliseconds waited so far because a service did not answer. */
  get unavailableMs(): number {
    return this.unavailableWaitedMs;
  }
}

/** True for failures no retry can fix: cancellation, non-retryable application failures, the vocabulary's types. */
export function isPermanent(err: unknown): boolean {
  if (isCancellation(err)) return true;
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof ActivityFailure && e.retryState === 'NON_RETRYABLE_FAILURE') return true;
    if (e instanceof ApplicationFailure && (e.nonRetryable || isFailure(e.type))) return true;
  }
  return false;
}

/** The heartbeat details the server kept for an attempt that timed out (a killed worker), if any. */
export function lastHeartbeatDetails(err: unknown): unknown {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof TimeoutFailure) return e.lastHeartbeatDetails;
  return undefined;
}

export interface RetryWhileProgressingOptions<T> {
  /** Names the work in the failure message ("training"). */
  what: string;
  policy: ProgressRetryPolicy;
  /** Runs one attempt (an activity scheduled with `maximumAttempts: 1`). `n` counts from 1. */
  attempt: (n: number) => Promise<T>;
  /** How far the work got, read after a failed attempt (e.g. from the failure's heartbeat details or workflow state). */
  cursor: (err: unknown) => number | undefined;
  /** The cursor before the first attempt (e.g. a resumed run's checkpoint); default none. */
  start?: number;
}

/**
 * Runs `attempt` until it succeeds, retrying while attempts make progress; see the file comment. Throws the
 * permanent failure as it came, or a non-retryable `NoProgress` failure once the budget is spent.
 */
export async function retryWhileProgressing<T>(o: RetryWhileProgressingOptions<T>): Promise<T> {
  const budget = new ProgressBudget(o.policy, o.start);
  for (let n = 1; ; n++) {
    try {
      return await o.attempt(n);
    } catch (err) {
      if (isPermanent(err)) throw err;
      // Runs recorded before the store-outage budget counted such failures as attempts without progress.
      const unavailable = isUnavailable(err) && patched('store-outage-budget');
      const decision = budget.afterFailure(o.cursor(err), unavailable);
      const reason = messageOf(err);
      if (!decision.retry) {
        const at = budget.cursor === undefined ? 'no progress was ever reported' : `it stayed at ${budget.cursor}`;
        throw ApplicationFailure.create({
          type: Failure.NoProgress,
          message: unavailable
            ? `a service did not answer for ${Math.round(budget.unavailableMs / 60_000)} min of retries ` +
              `(${budget.failures} attempts failed in all); last error: ${reason}`
            : `${decision.stalled} attempts in a row made no progress (${at}; ${budget.failures} attempts failed in ` +
              `all; compute.maxAttemptsWithoutProgress is ${o.policy.maxAttemptsWithoutProgress}); last error: ${reason}`,
          nonRetryable: true,
          details: [{ what: o.what, attempts: budget.failures, stalled: decision.stalled, cursor: budget.cursor }],
          cause: err instanceof Error ? err : undefined,
        });
      }
      log.warn(`${o.what}: attempt ${n} failed; retrying`, {
        error: reason,
        progressed: decision.progressed,
        cursor: budget.cursor,
        stalled: decision.stalled,
        delayMs: decision.delayMs,
      });
      await sleep(decision.delayMs);
    }
  }
}

/** The innermost message of a failure chain (an ActivityFailure's own message is only "activity failed"). */
function messageOf(err: unknown): string {
  let last = err instanceof Error ? err.message : String(err);
  for (let e = err; e instanceof Error; e = e.cause) if (e.message) last = e.message;
  return last;
}
