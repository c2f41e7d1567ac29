/**
 * The contract between `hardeningRun` and its activities: names, payloads (zod schemas in `schemas/payloads.ts`)
 * and the obligations each implementation has. The workflow imports this file as a **type** only
 * (`proxyActivities<Activities>`), so nothing here may pull tensors or S3 into the workflow bundle.
 *
 * Queues: `fetchDataset`, `promoteArtifact`, `writeReport`, `reduceEvaluation` run on `spec.compute.ioQueue`; the
 * rest on `spec.compute.heavyQueue` (one at a time per heavy worker).
 *
 * Failures: permanent problems throw `fail(Failure.X, message, details)` from `schemas/failures`; anything else
 * (network, a killed worker) is an ordinary `Error` and is retried.
 */
import type {
  AdversarialTrainInput,
  DatasetRef,
  EvaluateInput,
  EvaluateShardInput,
  EvaluateShardRef,
  EvaluationExtrasRef,
  FetchDatasetInput,
  Metrics,
  PrepareModelInput,
  PreparedModel,
  PromoteInput,
  PromoteResult,
  ReduceEvaluationInput,
  StoreEvaluationInput,
  ReportResult,
  TrainResult,
  WriteReportInput,
} from '../schemas/payloads';

export interface Activities {
  /**
   * io queue. Downloads (http/s3) or opens (local) `spec.dataset.source` into the worker cache and verifies
   * `spec.dataset.sha256`. Throws ChecksumMismatch, CorruptDataset, DatasetTooLarge or NotFound.
   */
  fetchDataset(input: FetchDatasetInput): Promise<DatasetRef>;

  /**
   * heavy queue. Resolves `spec.model.source` to a model in the object store: loads the artifact/folder/s3
   * model, checks it fits the dataset (InvalidModel otherwise), or trains a baseline (`train-baseline`, or the
   * artifact's `fallback` when it is missing: NotFound without a fallback). Must heartbeat while training
   * (the proxy has a heartbeat timeout).
   */
  prepareModel(input: PrepareModelInput): Promise<PreparedModel>;

  /**
   * heavy queue. Clean accuracy and every `spec.evaluation.attacks` entry on the model before hardening, in one
   * activity. Runs started before the evaluation was fanned out (`patched('evaluation-fanout')`) still call it.
   */
  baselineEval(input: EvaluateInput): Promise<Metrics>;

  /**
   * heavy queue, hours. Adversarial training per `spec.attack`, `spec.epsilon`, `spec.training`.
   * - Heartbeats every batch with a `TrainHeartbeat`; resumes from `activityInfo().heartbeatDetails`.
   * - Sends the workflow's `progress` signal (`workflows/messages`, payload `TrainProgress`) through a client,
   *   at least every few seconds and after each checkpoint, so the CLI's progress bar moves.
   * - On cancellation (seen through heartbeat): writes a checkpoint if the last one is stale, signals progress
   *   with its key, then rethrows the `CancelledFailure`.
   * - Diverged when the loss is NaN or above `spec.training.maxLoss`.
   */
  adversarialTrain(input: AdversarialTrainInput): Promise<TrainResult>;

  /** heavy queue. The benchmark of the hardened model in one activity; as `baselineEval`, for older runs. */
  benchmark(input: EvaluateInput): Promise<Metrics>;

  /**
   * heavy queue, one shard of an evaluation (`workflows/evaluation.ts`): the suite and each listed attack on test
   * images [start, start + count). Heartbeats after every batch and every few seconds (the proxy has a heartbeat
   * timeout) with its phase, attack, batch and per-example flags; a retried attempt resumes there. Stores its
   * per-example results in the object store and returns their key.
   */
  evaluateShard(input: EvaluateShardInput): Promise<EvaluateShardRef>;

  /** heavy queue. Beside the shards: the ε curve, the report's example pairs and the sanity probes. */
  evaluationExtras(input: EvaluateInput): Promise<EvaluationExtrasRef>;

  /** io queue. Reduces the shards' per-example results and the extras to the evaluation's `Metrics`. */
  reduceEvaluation(input: ReduceEvaluationInput): Promise<Metrics>;

  /**
   * io queue. A fanned-out evaluation's metrics from the step cache (`activities/step-cache.ts`), or null when
   * `compute.cache` is off or nothing with the same inputs was stored; on a hit the evaluation is skipped.
   */
  lookupEvaluation(input: EvaluateInput): Promise<Metrics | null>;

  /** io queue. Stores a fanned-out evaluation's metrics in the step cache (nothing when `compute.cache` is off). */
  storeEvaluation(input: StoreEvaluationInput): Promise<void>;

  /**
   * io queue. Stores the hardened model as a new version under `spec.artifacts` whatever the decision, and
   * moves the production pointer to it only when `decision.passed`. Idempotent per workflow execution (`workflowId` and Temporal's run id).
   */
  promoteArtifact(input: PromoteInput): Promise<PromoteResult>;

  /** io queue. Renders report.html (and metrics.json) for the run into the object store. */
  writeReport(input: WriteReportInput): Promise<ReportResult>;
}

export type ActivityName = keyof Activities;
