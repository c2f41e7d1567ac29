/**
 * `hardeningRun`: one spec in, a `RunSummary` out. Deterministic orchestration only: the activities do the I/O
 * and tensor work (see `activities/contract.ts`).
 *
 *   validate → fetchDataset (io) → prepareModel → baselineEval → adversarialTrain → benchmark (heavy)
 *   → gate (+ optional human approval) → promoteArtifact (io) → writeReport (io)
 *
 * Endings:
 * - `completed`: the gate (and the person, when asked) said yes; production names the hardened version.
 * - `rejected`: the gate, a person or the approval timeout said no; the version is stored, production unchanged.
 * - `cancelled`: the `cancel` signal stopped it; the result carries the last checkpoint key. The workflow itself
 *   completes (so the summary reaches the caller). A Temporal cancellation (`handle.cancel()`) instead ends the
 *   workflow as Cancelled; the `progress` query still tells the last checkpoint.
 * - failed: an invalid spec (`InvalidSpec`, before any activity), or an activity's permanent failure, rethrown
 *   with the same type (`err.cause.type` on the client) and the stage in the message.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  condition,
  executeChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/contract';
import { Failure, allFailures, fail, isFailure } from '../schemas/failures';
import {
  ApprovalDecision,
  CancelRequest,
  ResumeFrom,
  TrainProgress,
  specFor,
  type DatasetRef,
  type EvaluateInput,
  type EvaluationRole,
  type GateDecision,
  type Metrics,
  type ModelRef,
  type PromoteResult,
  type RunProgress,
  type RunSummary,
  type Stage,
} from '../schemas/payloads';
import { heavyQueueFor } from '../schemas/queues';
import { type Spec, type SpecInput, formatSpecErrors, safeParseSpec } from '../schemas/spec';
import { evaluation } from './evaluation';
import { evaluateGate, summarize } from './gate';
import {
  approveSignal,
  approveUpdate,
  cancelSignal,
  cancelUpdate,
  progressQuery,
  progressSignal,
  rejectSignal,
  rejectUpdate,
} from './messages';
import { DEFAULT_PROGRESS_RETRY, lastHeartbeatDetails, retryWhileProgressing } from './progress-retry';

/** Workflow time: deterministic (the time of the current workflow task), not the machine's clock. */
const now = () => new Date().getTime();

/** Activity proxies, one per kind of work: each its own timeouts and retries. */
function proxies(spec: Spec) {
  const { ioQueue, trainingTimeout, evaluationTimeout, heartbeatTimeout } = spec.compute;
  // A run that names a backend goes to the workers that run it (`<heavyQueue>@<backend>`); older runs kept the
  // plain heavy queue whatever they asked for.
  const heavyQueue =
    spec.compute.backend !== 'auto' && patched('backend-task-queue')
      ? heavyQueueFor(spec.compute.heavyQueue, spec.compute.backend)
      : spec.compute.heavyQueue;
  const nonRetryableErrorTypes = [...allFailures];
  const io = proxyActivities<Activities>({
    taskQueue: ioQueue,
    startToCloseTimeout: '30 minutes',
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 8,
      nonRetryableErrorTypes,
    },
  });
  const evaluation = proxyActivities<Activities>({
    taskQueue: heavyQueue,
    startToCloseTimeout: evaluationTimeout,
    retry: {
      initialInterval: '5s',
      backoffCoefficient: 2,
      maximumInterval: '2 minutes',
      maximumAttempts: 3,
      nonRetryableErrorTypes,
    },
  });
  const training = proxyActivities<Activities>({
    taskQueue: heavyQueue,
    startToCloseTimeout: trainingTimeout,
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '10s',
      backoffCoefficient: 2,
      maximumInterval: '5 minutes',
      maximumAttempts: 5,
      nonRetryableErrorTypes,
    },
  });
  // One attempt per schedule: the workflow retries it while attempts advance the checkpoint (progress-retry.ts).
  const trainingOnce = proxyActivities<Activities>({
    taskQueue: heavyQueue,
    startToCloseTimeout: trainingTimeout,
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1, nonRetryableErrorTypes },
  });
  return {
    fetchDataset: io.fetchDataset,
    promoteArtifact: io.promoteArtifact,
    writeReport: io.writeReport,
    lookupEvaluation: io.lookupEvaluation,
    storeEvaluation: io.storeEvaluation,
    prepareModel: training.prepareModel,
    adversarialTrain: training.adversarialTrain,
    adversarialTrainOnce: trainingOnce.adversarialTrain,
    baselineEval: evaluation.baselineEval,
    benchmark: evaluation.benchmark,
  };
}

/** The first failure of the vocabulary in an error's cause chain. */
function vocabularyFailure(err: unknown): ApplicationFailure | undefined {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof ApplicationFailure && isFailure(e.type)) return e;
  return undefined;
}

/** A checkpoint key the training activity attached to its CancelledFailure (details[0].checkpointKey). */
function checkpointFromCancellation(err: unknown): string | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof CancelledFailure) {
      const detail = e.details?.[0] as { checkpointKey?: unknown } | undefined;
      if (typeof detail?.checkpointKey === 'string') return detail.checkpointKey;
    }
  }
  return undefined;
}

/**
 * How far training got, for progress-aware retries: the newest checkpoint cursor the progress signal reported or
 * the failed attempt's last heartbeat carried (a killed worker's heartbeat outlives it on the server).
 */
function trainingCursor(state: RunProgress, err: unknown): number | undefined {
  const beat = lastHeartbeatDetails(err) as { progress?: { checkpointCursor?: unknown } } | undefined;
  const fromBeat = typeof beat?.progress?.checkpointCursor === 'number' ? beat.progress.checkpointCursor : undefined;
  const fromSignal = state.training?.checkpointCursor;
  if (fromBeat === undefined) return fromSignal;
  return fromSignal === undefined ? fromBeat : Math.max(fromBeat, fromSignal);
}

/**
 * @param input the spec (validated here).
 * @param resume set by `resumeHardeningRun`: the earlier run this one continues, with the outputs of the stages it
 *   completed (reused, not run again) and the executions whose training checkpoints may be continued.
 */
export async function hardeningRun(input: SpecInput, resumeInput?: ResumeFrom): Promise<RunSummary> {
  const workflowId = workflowInfo().workflowId;
  const state: RunProgress = {
    stage: 'validating',
    status: 'running',
    checkpoints: 0,
    awaitingApproval: false,
    cancelRequested: false,
    timings: {},
  };
  let cancelRequest: CancelRequest | undefined;
  let personDecision: GateDecision | undefined;
  let stageScope: CancellationScope | undefined;

  setHandler(progressQuery, () => structuredCloneLike(state));
  setHandler(progressSignal, (payload) => {
    const parsed = TrainProgress.safeParse(payload);
    if (!parsed.success) return log.warn('ignored a malformed progress signal', { error: parsed.error.message });
    const p = parsed.data;
    state.training = p;
    state.checkpoints = Math.max(state.checkpoints, p.checkpoints);
    if (p.checkpointKey) state.checkpointKey = p.checkpointKey;
  });
  setHandler(cancelSignal, (payload) => {
    if (state.cancelRequested || state.status !== 'running') return;
    if (state.stage === 'promoting' || state.stage === 'report' || state.stage === 'done')
      return log.warn('ignored a cancel signal: the decision is made and is being recorded', { stage: state.stage });
    const parsed = CancelRequest.safeParse(payload ?? {});
    cancelRequest = parsed.success ? parsed.data : {};
    state.cancelRequested = true;
    stageScope?.cancel();
  });
  const decide = (passed: boolean) => (payload: ApprovalDecision) => {
    const parsed = ApprovalDecision.safeParse(payload);
    if (!parsed.success) return log.warn('ignored a malformed approval signal', { error: parsed.error.message });
    if (!state.awaitingApproval || personDecision)
      return log.warn('ignored an approval signal: the run is not waiting for one', { stage: state.stage });
    const { by, reason } = parsed.data;
    personDecision = {
      passed,
      decidedBy: 'person',
      by,
      reasons: [`${passed ? 'approved' : 'rejected'} by ${by}${reason ? `: ${reason}` : ''}`],
    };
  };
  setHandler(approveSignal, decide(true));
  setHandler(rejectSignal, decide(false));
  // The same decisions as Updates: the validators refuse, with the reason, what the signal handlers ignore.
  const cancelRefusal = (payload: CancelRequest) => {
    if (state.cancelRequested) return `cancel already requested: stage ${state.stage}`;
    if (state.status !== 'running') return `not running: ${state.status}`;
    if (state.stage === 'promoting' || state.stage === 'report' || state.stage === 'done')
      return `the decision is made and is being recorded: stage ${state.stage}`;
    const parsed = CancelRequest.safeParse(payload);
    return parsed.success ? undefined : `malformed cancel request: ${parsed.error.message}`;
  };
  const approvalRefusal = (payload: ApprovalDecision) => {
    const parsed = ApprovalDecision.safeParse(payload);
    if (!parsed.success) return `malformed decision: ${parsed.error.message}`;
    if (!state.awaitingApproval || personDecision) return `not awaiting approval: stage ${state.stage}`;
    return undefined;
  };
  const refuse = (why: string | undefined) => {
    if (why) throw new Error(why);
  };
  setHandler(
    cancelUpdate,
    (payload) => {
      const stage = state.stage;
      cancelRequest = CancelRequest.parse(payload);
      state.cancelRequested = true;
      stageScope?.cancel();
      return { stage };
    },
    { validator: (payload) => refuse(cancelRefusal(payload)) },
  );
  for (const [update, passed] of [
    [approveUpdate, true],
    [rejectUpdate, false],
  ] as const) {
    setHandler(
      update,
      (payload) => {
        const stage = state.stage;
        decide(passed)(payload);
        return { stage };
      },
      { validator: (payload) => refuse(approvalRefusal(payload)) },
    );
  }

  // Validate before any work: every problem at once, each naming its field.
  const parsed = safeParseSpec(input);
  if (!parsed.success) {
    state.status = 'failed';
    const errors = formatSpecErrors(parsed.error);
    throw fail(Failure.InvalidSpec, `invalid spec:\n${errors.join('\n')}`, { errors });
  }
  const spec = parsed.data;
  const act = proxies(spec);
  // Each evaluation is a child workflow that fans its shards out over the heavy workers; runs recorded before
  // that change keep their single evaluation activity.
  const fanOut = patched('evaluation-fanout');
  // A fanned-out evaluation consults the step cache first (the single activity of older runs does so itself).
  const cacheFanOut = fanOut && patched('evaluation-cache');
  const evaluationSpec = specFor(spec, 'evaluation');
  const evaluate = async (role: EvaluationRole, model: ModelRef, dataset: DatasetRef): Promise<Metrics> => {
    const input: EvaluateInput = { workflowId, spec: evaluationSpec, dataset, model, role };
    if (!fanOut) return role === 'baseline' ? act.baselineEval(input) : act.benchmark(input);
    const cacheable = cacheFanOut && spec.compute.cache;
    const hit = cacheable ? await act.lookupEvaluation(input) : null;
    if (hit) return hit;
    const metrics = await executeChild(evaluation, {
      args: [{ ...input, heavyQueue: heavyQueueFor(spec.compute.heavyQueue, spec.compute.backend) }],
      // Not derived from the workflow id: a history replayed under another id must schedule the same child.
      workflowId: `${role}-evaluation-${uuid4()}`,
    });
    if (cacheable) await act.storeEvaluation({ ...input, metrics });
    return metrics;
  };
  let resume: ResumeFrom | undefined;
  if (resumeInput !== undefined) {
    const r = ResumeFrom.safeParse(resumeInput);
    if (!r.success) {
      state.status = 'failed';
      throw fail(Failure.InvalidSpec, `invalid resume argument: ${r.error.message}`);
    }
    resume = r.data;
  }
  const reused: Stage[] = [];
  /** A stage's output from the run this one resumes, or the stage run now. */
  const reuseOr = async <T>(name: Stage, earlier: T | undefined, run: () => Promise<T>): Promise<T> => {
    if (earlier === undefined) return stage(name, run);
    reused.push(name);
    return earlier;
  };

  /** Runs one stage in its own cancellation scope (the `cancel` signal cancels it) and times it. */
  async function stage<T>(name: Stage, fn: () => Promise<T>): Promise<T> {
    if (state.cancelRequested) throw new CancelledFailure('cancel requested');
    state.stage = name;
    const start = now();
    try {
      return await CancellationScope.cancellable(async () => {
        stageScope = CancellationScope.current();
        return fn();
      });
    } catch (err) {
      if (state.cancelRequested) {
        state.checkpointKey = checkpointFromCancellation(err) ?? state.checkpointKey;
        throw new CancelledFailure('cancel requested', [], err instanceof Error ? err : undefined);
      }
      const failure = vocabularyFailure(err);
      if (failure && !isCancellation(err))
        throw ApplicationFailure.create({
          type: failure.type ?? undefined,
          message: `${name}: ${failure.message}`,
          nonRetryable: true,
          details: failure.details ? [...failure.details] : undefined,
          cause: err instanceof Error ? err : undefined,
        });
      throw err;
    } finally {
      stageScope = undefined;
      state.timings[name] = (state.timings[name] ?? 0) + (now() - start) / 1000;
    }
  }

  const summary: RunSummary = {
    status: 'cancelled',
    workflowId,
    modelName: spec.artifacts.modelName,
    stage: 'validating',
    checkpoints: 0,
    timings: state.timings,
    warnings: [],
    ...(resume ? { resumedFrom: resume.from, reused } : {}),
  };
  /** Notes a stage whose output came from the step cache. */
  const noteCached = <T extends { cached?: boolean }>(name: Stage, value: T): T => {
    if (value.cached && !reused.includes(name)) (summary.cached ??= []).push(name);
    return value;
  };
  const finish = async (status: RunSummary['status']): Promise<RunSummary> => {
    state.status = status;
    Object.assign(summary, {
      status,
      stage: status === 'cancelled' ? state.stage : 'done',
      checkpoints: state.checkpoints,
      checkpointKey: state.checkpointKey,
      timings: { ...state.timings },
      cancel: status === 'cancelled' ? cancelRequest : undefined,
    });
    if (status !== 'cancelled') state.stage = 'done';
    await condition(allHandlersFinished);
    return dropUndefined(summary);
  };

  try {
    const dataset: DatasetRef = await reuseOr('fetching-dataset', resume?.dataset, () =>
      act.fetchDataset({ workflowId, spec: specFor(spec, 'fetchDataset') }),
    );
    summary.dataset = dataset;

    const prepared = noteCached(
      'preparing-model',
      await reuseOr('preparing-model', resume?.prepared, () =>
        act.prepareModel({ workflowId, spec: specFor(spec, 'prepareModel'), dataset }),
      ),
    );
    const baselineModel: ModelRef = prepared.model;
    summary.baselineModel = baselineModel;
    summary.backend = prepared.backend ?? summary.backend;

    const baseline: Metrics = noteCached(
      'baseline-eval',
      await reuseOr('baseline-eval', resume?.baseline, () => evaluate('baseline', baselineModel, dataset)),
    );
    state.baseline = baseline;
    summary.baseline = summarize(spec.gate, baseline);
    summary.backend = baseline.backend;

    const trainInput = {
      workflowId,
      spec: specFor(spec, 'adversarialTrain'),
      dataset,
      model: baselineModel,
      ...(resume ? { resumeFrom: resume.checkpointsOf } : {}),
    };
    const trained = await stage('training', () =>
      // Histories recorded before progress-aware retries used the proxy's fixed attempt budget.
      patched('progress-aware-training-retries')
        ? retryWhileProgressing({
            what: 'training',
            policy: { ...DEFAULT_PROGRESS_RETRY, maxAttemptsWithoutProgress: spec.compute.maxAttemptsWithoutProgress },
            cursor: (err) => trainingCursor(state, err),
            attempt: () => act.adversarialTrainOnce(trainInput),
          })
        : act.adversarialTrain(trainInput),
    );
    state.checkpointKey = trained.checkpointKey;
    state.checkpoints = Math.max(state.checkpoints, trained.checkpoints);
    summary.backend = trained.backend;
    summary.training = trained;

    const hardened: Metrics = noteCached(
      'benchmark',
      await stage('benchmark', () => evaluate('hardened', trained.model, dataset)),
    );
    state.hardened = hardened;
    summary.hardened = summarize(spec.gate, hardened);

    state.stage = 'gate';
    let decision = evaluateGate(spec.gate, baseline, hardened);
    state.gate = decision;

    if (decision.passed && spec.gate.requireApproval) {
      if (state.cancelRequested) throw new CancelledFailure('cancel requested');
      state.stage = 'awaiting-approval';
      state.awaitingApproval = true;
      const start = now();
      const decided = await condition(
        () => personDecision !== undefined || state.cancelRequested,
        spec.gate.approvalTimeout,
      );
      state.awaitingApproval = false;
      state.timings['awaiting-approval'] = (now() - start) / 1000;
      if (state.cancelRequested && !personDecision) throw new CancelledFailure('cancel requested');
      decision =
        decided && personDecision
          ? { ...personDecision, reasons: [...decision.reasons, ...personDecision.reasons] }
          : {
              passed: false,
              decidedBy: 'timeout',
              reasons: [...decision.reasons, `nobody approved or rejected within ${spec.gate.approvalTimeout}`],
            };
      state.gate = decision;
    }
    summary.gate = decision;

    const artifact: PromoteResult = await stage('promoting', () =>
      act.promoteArtifact({ workflowId, spec, model: trained.model, decision, metrics: hardened, baseline, dataset }),
    );
    summary.artifact = artifact;
    const status: RunSummary['status'] = decision.passed ? 'completed' : 'rejected';

    // The report is a courtesy: the model is already stored, so a failed report is a warning, not a failure.
    try {
      const draft = dropUndefined({
        ...summary,
        status,
        stage: 'done' as const,
        checkpoints: state.checkpoints,
        checkpointKey: state.checkpointKey,
        timings: { ...state.timings },
      });
      const report = await stage('report', () =>
        act.writeReport({ workflowId, spec, summary: draft, baseline, hardened }),
      );
      summary.reportUri = report.uri;
    } catch (err) {
      if (isCancellation(err)) throw err;
      summary.warnings.push(`report: ${err instanceof Error ? err.message : String(err)}`);
    }
    return await finish(status);
  } catch (err) {
    if (state.cancelRequested && isCancellation(err)) return await finish('cancelled');
    state.status = isCancellation(err) ? 'cancelled' : 'failed';
    throw err;
  }
}

/** A plain copy for the query (no shared references to mutable state). */
function structuredCloneLike<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Payload converters drop undefined anyway; doing it here keeps results equal to what the caller receives. */
function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
