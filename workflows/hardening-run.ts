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
  TrainProgress,
  type DatasetRef,
  type EvaluateInput,
  type GateDecision,
  type Metrics,
  type ModelRef,
  type PromoteResult,
  type RunProgress,
  type RunSummary,
  type Stage,
} from '../schemas/payloads';
import { type Spec, type SpecInput, formatSpecErrors, safeParseSpec } from '../schemas/spec';
import { evaluation } from './evaluation';
import { evaluateGate, summarize } from './gate';
import { approveSignal, cancelSignal, progressQuery, progressSignal, rejectSignal } from './messages';

/** Workflow time: deterministic (the time of the current workflow task), not the machine's clock. */
const now = () => new Date().getTime();

/** Activity proxies, one per kind of work: each its own timeouts and retries. */
function proxies(spec: Spec) {
  const { ioQueue, heavyQueue, trainingTimeout, evaluationTimeout, heartbeatTimeout } = spec.compute;
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
  return {
    fetchDataset: io.fetchDataset,
    promoteArtifact: io.promoteArtifact,
    writeReport: io.writeReport,
    prepareModel: training.prepareModel,
    adversarialTrain: training.adversarialTrain,
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

export async function hardeningRun(input: SpecInput): Promise<RunSummary> {
  const runId = workflowInfo().workflowId;
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
  const evaluate = (role: 'baseline' | 'hardened', input: Omit<EvaluateInput, 'role'>): Promise<Metrics> =>
    fanOut
      ? executeChild(evaluation, {
          args: [{ ...input, role, heavyQueue: spec.compute.heavyQueue }],
          // Not derived from the workflow id: a history replayed under another id must schedule the same child.
          workflowId: `${role}-evaluation-${uuid4()}`,
        })
      : role === 'baseline'
        ? act.baselineEval({ ...input, role })
        : act.benchmark({ ...input, role });

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
    runId,
    modelName: spec.artifacts.modelName,
    stage: 'validating',
    checkpoints: 0,
    timings: state.timings,
    warnings: [],
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
    const dataset: DatasetRef = await stage('fetching-dataset', () => act.fetchDataset({ runId, spec }));
    summary.dataset = dataset;

    const prepared = await stage('preparing-model', () => act.prepareModel({ runId, spec, dataset }));
    const baselineModel: ModelRef = prepared.model;
    summary.baselineModel = baselineModel;
    summary.backend = prepared.backend ?? summary.backend;

    const baseline: Metrics = await stage('baseline-eval', () =>
      evaluate('baseline', { runId, spec, dataset, model: baselineModel }),
    );
    state.baseline = baseline;
    summary.baseline = summarize(spec.gate, baseline);
    summary.backend = baseline.backend;

    const trained = await stage('training', () => act.adversarialTrain({ runId, spec, dataset, model: baselineModel }));
    state.checkpointKey = trained.checkpointKey;
    state.checkpoints = Math.max(state.checkpoints, trained.checkpoints);
    summary.backend = trained.backend;
    summary.training = trained;

    const hardened: Metrics = await stage('benchmark', () =>
      evaluate('hardened', { runId, spec, dataset, model: trained.model }),
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
      act.promoteArtifact({ runId, spec, model: trained.model, decision, metrics: hardened, baseline, dataset }),
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
      const report = await stage('report', () => act.writeReport({ runId, spec, summary: draft, baseline, hardened }));
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
