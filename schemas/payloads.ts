/**
 * What the activities and the workflow exchange. Only keys and small metrics travel through Temporal: datasets,
 * checkpoints and weights stay on disk caches and in the object store. Workflow-safe (zod only).
 */
import { z } from 'zod';
import { Architecture, Spec, SuiteName } from './spec';

const accuracy = z.number().min(0).max(1);
const count = z.int().min(0);
const seconds = z.number().min(0);

/** The compute backend an activity actually ran on (the spec's `auto` resolved). */
export const Backend = z.enum(['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']);
export type Backend = z.infer<typeof Backend>;

/** A fetched, verified dataset in the worker's cache. */
export const DatasetRef = z.strictObject({
  /** Cache key (content-addressed) or path the heavy activities read from. */
  key: z.string().min(1),
  source: z.string().min(1),
  format: z.enum(['idx', 'cifar10-binary', 'image-folder']),
  /** SHA-256 per file name, as computed (and checked against the spec when it pins them). */
  sha256s: z.record(z.string(), z.string()),
  counts: z.strictObject({ train: count, test: count, classes: z.int().min(1) }),
  /** Height, width, channels. */
  imageShape: z.tuple([z.int().min(1), z.int().min(1), z.int().min(1)]),
  classNames: z.array(z.string()).optional(),
});
export type DatasetRef = z.infer<typeof DatasetRef>;

/** A model in the object store (or a local folder for `kind: folder`). */
export const ModelRef = z.strictObject({
  uri: z.string().min(1),
  version: z.string().optional(),
  architecture: Architecture.optional(),
  sha256: z.string().optional(),
});
export type ModelRef = z.infer<typeof ModelRef>;

/** A 95 % Wilson score interval on an accuracy. */
export const Interval = z.strictObject({ low: accuracy, high: accuracy });
export type Interval = z.infer<typeof Interval>;

export const AttackAccuracy = z.strictObject({
  attack: z.string(),
  eps: z.number().min(0),
  accuracy,
  /** 95 % Wilson interval (absent in results recorded before intervals existed). */
  interval: Interval.optional(),
});
export type AttackAccuracy = z.infer<typeof AttackAccuracy>;

/** One step of the suite's waterfall: the attack ran on the points every earlier attack left robust. */
export const SuiteAttackMetrics = z.strictObject({
  attack: z.string(),
  /** Points this attack broke that every earlier attack had left robust. */
  broke: count,
  /** Robust accuracy once this attack (and every earlier one) has run. */
  accuracyAfter: accuracy,
  interval: Interval,
});
export type SuiteAttackMetrics = z.infer<typeof SuiteAttackMetrics>;

/** The per-example worst case: a point counts as robust only if no attack of the evaluation broke it. */
export const WorstCase = z.strictObject({
  accuracy,
  interval: Interval,
  /** Points correct on clean inputs that no attack broke. */
  robust: count,
  eps: z.number().min(0),
});
export type WorstCase = z.infer<typeof WorstCase>;

/**
 * One gradient-masking sanity check (the tensor core's panel): whether it fired, whether it had anything to look at,
 * and the numbers it read. The gate and the report decide what to say about it.
 */
export const SanityFlag = z.strictObject({
  name: z.string(),
  fired: z.boolean(),
  evaluated: z.boolean(),
  numbers: z.record(z.string(), z.number()),
});
export type SanityFlag = z.infer<typeof SanityFlag>;

export const ClassMetrics = z.strictObject({
  label: count,
  name: z.string().optional(),
  clean: accuracy,
  /** The per-example worst case (fanned-out evaluations); the gate's or first attack in older results. */
  robust: accuracy.optional(),
  images: count,
});
export type ClassMetrics = z.infer<typeof ClassMetrics>;

/** One adversarial example kept for the report; the images themselves live in the object store. */
export const Example = z.strictObject({
  index: count,
  label: count,
  cleanPrediction: count,
  adversarialPrediction: count,
  attack: z.string(),
  /** Object-store key of a PNG strip (clean, perturbation, adversarial). */
  imageKey: z.string().optional(),
});
export type Example = z.infer<typeof Example>;

/**
 * What an evaluation measures. `robust` lists one entry per `evaluation.attacks` entry, in spec order, each run
 * on every image; `suite`, `suiteAttacks` and `worstCase` (absent in results recorded before suites existed)
 * give the suite's waterfall and the per-example worst case over every attack that ran.
 */
export const Metrics = z.strictObject({
  clean: accuracy,
  cleanInterval: Interval.optional(),
  robust: z.array(AttackAccuracy),
  suite: SuiteName.optional(),
  suiteAttacks: z.array(SuiteAttackMetrics).optional(),
  worstCase: WorstCase.optional(),
  sanity: z.array(SanityFlag).optional(),
  /** Shards the evaluation ran as, and the workers that ran them (identities as Temporal records them). */
  shards: z.int().min(1).optional(),
  epsCurve: z.array(z.strictObject({ eps: z.number().min(0), accuracy })).default([]),
  perClass: z.array(ClassMetrics).default([]),
  /** confusion[true][predicted] on clean images. */
  confusion: z.array(z.array(count)).default([]),
  examples: z.array(Example).default([]),
  images: count,
  seconds,
  backend: Backend,
  /** True when an earlier run's evaluation with the same inputs was reused (step cache). */
  cached: z.boolean().optional(),
});
export type Metrics = z.infer<typeof Metrics>;
export type MetricsInput = z.input<typeof Metrics>;

/** What `prepareModel` hands on: the model to harden and how it came to be. */
export const PreparedModel = z.strictObject({
  model: ModelRef,
  origin: z.enum(['artifact', 'folder', 's3', 'trained-baseline']),
  /** True when the artifact was missing and `fallback: train-baseline` trained one. */
  fellBack: z.boolean().default(false),
  seconds,
  backend: Backend.optional(),
  /** True when an earlier run's output with the same inputs was reused (step cache). */
  cached: z.boolean().optional(),
});
export type PreparedModel = z.infer<typeof PreparedModel>;

/** Training progress: the `progress` signal's payload (the training activity sends it) and its heartbeat. */
export const TrainProgress = z.strictObject({
  epoch: z.int().min(0),
  epochs: z.int().min(1),
  /** Batches done in the current epoch. */
  batch: count,
  batchesPerEpoch: z.int().min(1),
  epsilon: z.number().min(0),
  loss: z.number(),
  /** Training images per second (clean + adversarial forward/backward). */
  imagesPerSecond: z.number().min(0),
  /** Images per batch, for the ETA. */
  batchSize: z.int().min(1).optional(),
  checkpoints: count,
  checkpointKey: z.string().optional(),
  /** Global batch cursor of `checkpointKey`: how far a retry would resume from (progress-aware retries). */
  checkpointCursor: count.optional(),
  backend: Backend.optional(),
});
export type TrainProgress = z.infer<typeof TrainProgress>;

/** What the training activity heartbeats: enough to resume, never tensors. */
export const TrainHeartbeat = z.strictObject({
  checkpointKey: z.string().optional(),
  /** Global batch cursor (epochs × batchesPerEpoch + batch) the checkpoint was taken at. */
  cursor: count,
  checkpoints: count,
});
export type TrainHeartbeat = z.infer<typeof TrainHeartbeat>;

export const TrainResult = z.strictObject({
  model: ModelRef,
  /** The last checkpoint written (the final state). */
  checkpointKey: z.string(),
  epochs: count,
  batches: count,
  /** Set when this attempt resumed from a previous attempt's checkpoint. */
  resumedFrom: z.string().optional(),
  checkpoints: count,
  finalLoss: z.number().optional(),
  seconds,
  backend: Backend,
  /** The shards of each batch (`compute.threads`) and the threads of the last attempt that trained them. */
  shards: count.optional(),
  threads: count.optional(),
  /** Guarded runs: the probe after each epoch, and the decisions taken on it (epochs 1-based; 0 = the start). */
  guard: z
    .strictObject({
      /** the epoch whose weights are the hardened model (the best probe under training.keepBest) */
      keptEpoch: z.int().min(0),
      /** the epoch with the best probe robust accuracy */
      bestEpoch: z.int().min(0),
      bestRobust: z.number().min(0).max(1),
      /** probe robust accuracy per epoch, the starting model first */
      probeRobust: z.array(z.number().min(0).max(1)),
      /** set when training stopped on a collapse of the probe (catastrophic overfitting) */
      overfitting: z
        .strictObject({
          epoch: z.int().min(1),
          robust: z.number(),
          previousEpoch: z.int().min(0),
          previousRobust: z.number(),
        })
        .optional(),
      warning: z.string().optional(),
    })
    .optional(),
});
export type TrainResult = z.infer<typeof TrainResult>;

export const Decider = z.enum(['gate', 'person', 'timeout']);
export type Decider = z.infer<typeof Decider>;

export const GateDecision = z.strictObject({
  passed: z.boolean(),
  /** One sentence per criterion, with the numbers (met or not). */
  reasons: z.array(z.string()),
  decidedBy: Decider,
  /** Who decided, for `person`. */
  by: z.string().optional(),
});
export type GateDecision = z.infer<typeof GateDecision>;

/** Text a person types into a signal (who, why): bounded, and no control characters (terminal escapes). */
const PersonText = (max: number) =>
  z
    .string()
    .max(max)
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$/, 'expected no control characters');
/** Who decides: at most 200 characters. */
export const PersonName = PersonText(200);
/** Why: at most 2000 characters. */
export const PersonReason = PersonText(2000);

/** A person's decision on a run waiting for approval (`approve` / `reject` signals). */
export const ApprovalDecision = z.strictObject({
  by: PersonName.min(1),
  reason: PersonReason.optional(),
});
export type ApprovalDecision = z.infer<typeof ApprovalDecision>;

/** The `cancel` signal's payload. */
export const CancelRequest = z.strictObject({
  by: PersonName.optional(),
  reason: PersonReason.optional(),
});
export type CancelRequest = z.infer<typeof CancelRequest>;

export const PromoteResult = z.strictObject({
  /** Where the hardened model's version is stored (written whether or not it passed). */
  uri: z.string(),
  version: z.string(),
  /** True when the production pointer now names this version. */
  promoted: z.boolean(),
  productionUri: z.string().optional(),
});
export type PromoteResult = z.infer<typeof PromoteResult>;

export const ReportResult = z.strictObject({ uri: z.string() });
export type ReportResult = z.infer<typeof ReportResult>;

export const Stage = z.enum([
  'validating',
  'fetching-dataset',
  'preparing-model',
  'baseline-eval',
  'training',
  'benchmark',
  'gate',
  'awaiting-approval',
  'promoting',
  'report',
  'done',
]);
export type Stage = z.infer<typeof Stage>;

export const AccuracySummary = z.strictObject({
  clean: accuracy,
  /** The gate's robust accuracy (its attack, or the weakest result). */
  robust: accuracy,
  robustByAttack: z.array(AttackAccuracy),
});
export type AccuracySummary = z.infer<typeof AccuracySummary>;

export const RunStatus = z.enum(['completed', 'rejected', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatus>;

/** One Temporal execution: a workflow id and the run id Temporal gave that execution. */
export const ExecutionRef = z.strictObject({ workflowId: z.string().min(1), temporalRunId: z.string().min(1) });
export type ExecutionRef = z.infer<typeof ExecutionRef>;

/**
 * `hardeningRun`'s optional second argument: continue an earlier run that failed, was cancelled or timed out
 * (`resumeHardeningRun` builds it from that run's history). Stages with an output here are not run again.
 */
export const ResumeFrom = z.strictObject({
  /** The execution this run continues. */
  from: ExecutionRef,
  /** Executions whose training checkpoints may be continued, newest first (`from`, then what it resumed from). */
  checkpointsOf: z.array(ExecutionRef).min(1),
  dataset: DatasetRef.optional(),
  prepared: PreparedModel.optional(),
  baseline: Metrics.optional(),
});
export type ResumeFrom = z.infer<typeof ResumeFrom>;

/** What `hardeningRun` returns. */
export const RunSummary = z.strictObject({
  /**
   * completed: the gate passed and production now names the hardened model; rejected: the gate, a person or
   * the approval timeout said no (the version is stored, production did not move); cancelled: the `cancel`
   * signal stopped the run (`checkpointKey` is the last checkpoint).
   */
  status: RunStatus,
  /** The hardening run's workflow id. */
  workflowId: z.string(),
  modelName: z.string(),
  /** The stage the run was in when it ended (`done` unless cancelled). */
  stage: Stage,
  dataset: DatasetRef.optional(),
  baselineModel: ModelRef.optional(),
  baseline: AccuracySummary.optional(),
  hardened: AccuracySummary.optional(),
  gate: GateDecision.optional(),
  artifact: PromoteResult.optional(),
  reportUri: z.string().optional(),
  checkpointKey: z.string().optional(),
  checkpoints: count,
  /** What adversarial training did: batches, checkpoints, and the checkpoint it resumed from after a crash. */
  training: TrainResult.optional(),
  /** Wall-clock seconds per stage, as the workflow saw them (queueing included). */
  timings: z.record(z.string(), seconds),
  backend: Backend.optional(),
  cancel: CancelRequest.optional(),
  /** Problems that did not fail the run (e.g. the report could not be written). */
  warnings: z.array(z.string()),
  /** Set when this run continues an earlier one (`tempered resume`). */
  resumedFrom: ExecutionRef.optional(),
  /** Stages whose output came from the earlier run instead of running again. */
  reused: z.array(Stage).optional(),
  /** Stages whose output came from the step cache (same inputs as an earlier run; `compute.cache`). */
  cached: z.array(Stage).optional(),
});
export type RunSummary = z.infer<typeof RunSummary>;

/** What the `progress` query returns. */
export const RunProgress = z.strictObject({
  stage: Stage,
  status: z.enum(['running', 'completed', 'rejected', 'cancelled', 'failed']),
  training: TrainProgress.optional(),
  checkpoints: count,
  checkpointKey: z.string().optional(),
  baseline: Metrics.optional(),
  hardened: Metrics.optional(),
  gate: GateDecision.optional(),
  awaitingApproval: z.boolean(),
  cancelRequested: z.boolean(),
  timings: z.record(z.string(), seconds),
});
export type RunProgress = z.infer<typeof RunProgress>;

/**
 * What a person following a run sees (the client's `liveProgress`): the `progress` query, plus what the run's
 * activities heartbeat and its evaluation child answers, read without adding to the history.
 */
export const LiveProgress = z.strictObject({
  ...RunProgress.shape,
  /** The baseline's training, while `preparing-model` trains one (`model.source: train-baseline` or fallback). */
  baselineTraining: TrainProgress.optional(),
  /** The evaluation in progress, during `baseline-eval` and `benchmark`. */
  evaluation: z.lazy(() => EvaluationProgress).optional(),
});
export type LiveProgress = z.infer<typeof LiveProgress>;

// ---------------------------------------------------------------------------------------------------------------
// Activity inputs. Each carries the run id (the workflow id) that names its keys in the object store, and the
// parsed spec's sections its stage reads (`SPEC_READS`): every input is recorded in the run's history, and an
// evaluation alone schedules one activity per shard, so the whole spec (its description included) travels only
// to the activities that record it: the promoted version's manifest and the report.

/** The spec sections each stage's activities read; nothing else of the spec travels in their inputs. */
export const SPEC_READS = {
  fetchDataset: ['dataset', 'artifacts'],
  prepareModel: ['dataset', 'model', 'training', 'artifacts', 'compute'],
  adversarialTrain: ['dataset', 'attack', 'epsilon', 'training', 'artifacts', 'compute'],
  /** An evaluation: its child workflow, the shards, the extras, the reduction and the step-cache lookups. */
  evaluation: ['dataset', 'attack', 'epsilon', 'training', 'evaluation', 'gate', 'artifacts', 'compute'],
} as const satisfies Record<string, readonly (keyof Spec)[]>;
export type SpecReader = keyof typeof SPEC_READS;
/** The part of a parsed spec that `reader` receives. */
export type SpecFor<R extends SpecReader> = Pick<Spec, (typeof SPEC_READS)[R][number]>;

/** The sections of `spec` that `reader` reads (the same objects, not copies: the workflow sends them as they are). */
export function specFor<R extends SpecReader>(spec: SpecFor<R>, reader: R): SpecFor<R> {
  return Object.fromEntries(SPEC_READS[reader].map((k) => [k, spec[k as keyof SpecFor<R>]])) as SpecFor<R>;
}

/**
 * A spec slice in a payload schema. It was validated as a whole where the run started (the workflow parses the
 * spec before any activity), so a payload only checks that it is an object.
 */
const specSlice = <R extends SpecReader>(_reader: R) =>
  z.custom<SpecFor<R>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'expected spec sections');

const workflowId = z.string().min(1);

export const FetchDatasetInput = z.strictObject({ workflowId, spec: specSlice('fetchDataset') });
export type FetchDatasetInput = z.infer<typeof FetchDatasetInput>;

export const PrepareModelInput = z.strictObject({ workflowId, spec: specSlice('prepareModel'), dataset: DatasetRef });
export type PrepareModelInput = z.infer<typeof PrepareModelInput>;

/** Which model an evaluation measures: the one before hardening or the hardened one. */
export const EvaluationRole = z.enum(['baseline', 'hardened']);
export type EvaluationRole = z.infer<typeof EvaluationRole>;

export const EvaluateInput = z.strictObject({
  workflowId,
  spec: specSlice('evaluation'),
  dataset: DatasetRef,
  model: ModelRef,
  /** baseline: clean + the spec's attacks; hardened: also the ε curve, per-class metrics and examples. */
  role: EvaluationRole,
});
export type EvaluateInput = z.infer<typeof EvaluateInput>;

/** storeEvaluation: an evaluation's input (its cache key) and the metrics it produced. */
export const StoreEvaluationInput = EvaluateInput.extend({ metrics: Metrics });
export type StoreEvaluationInput = z.infer<typeof StoreEvaluationInput>;

export const AdversarialTrainInput = z.strictObject({
  workflowId,
  spec: specSlice('adversarialTrain'),
  dataset: DatasetRef,
  model: ModelRef,
  /** Earlier executions (a resumed run's predecessors) whose newest valid checkpoint training may continue. */
  resumeFrom: z.array(ExecutionRef).optional(),
});
export type AdversarialTrainInput = z.infer<typeof AdversarialTrainInput>;

/** The whole spec: it is recorded in the version's manifest. */
const wholeSpec = { workflowId, spec: Spec };

export const PromoteInput = z.strictObject({
  ...wholeSpec,
  model: ModelRef,
  decision: GateDecision,
  metrics: Metrics,
  baseline: Metrics.optional(),
  /** Its hashes go into the version's manifest. */
  dataset: DatasetRef.optional(),
});
export type PromoteInput = z.infer<typeof PromoteInput>;

/** The whole spec: the report shows it. */
export const WriteReportInput = z.strictObject({
  ...wholeSpec,
  summary: RunSummary,
  baseline: Metrics.optional(),
  hardened: Metrics.optional(),
});
export type WriteReportInput = z.infer<typeof WriteReportInput>;

// ---------------------------------------------------------------------------------------------------------------
// The fanned-out evaluation (`workflows/evaluation.ts`): shards of test images on the heavy queue, one extras
// activity (ε curve, example images, sanity probes), one reduction into `Metrics`.

/** One shard: test images [start, start + count) of the evaluation. */
export const EvaluateShardInput = z.strictObject({
  ...EvaluateInput.shape,
  shard: z.strictObject({ index: count, start: count, count: z.int().min(1) }),
  /**
   * The heartbeat an earlier, killed attempt left (the workflow's progress-aware retry schedules a new activity,
   * which does not inherit heartbeat details): where to resume.
   */
  resume: z.unknown().optional(),
});
export type EvaluateShardInput = z.infer<typeof EvaluateShardInput>;

/** What a shard hands back: where its per-example results lie, and how it ran. */
export const EvaluateShardRef = z.strictObject({
  index: count,
  start: count,
  count: z.int().min(1),
  /** Object-store key (in `spec.artifacts.bucket`) of the shard's per-example results. */
  key: z.string().min(1),
  seconds,
  backend: Backend,
  /** The attempt resumed from an earlier attempt's heartbeat at this attack and batch. */
  resumedAt: z.strictObject({ phase: count, attack: count, batch: count }).optional(),
});
export type EvaluateShardRef = z.infer<typeof EvaluateShardRef>;

/**
 * Where a running shard stands, in its heartbeat beside the resume state: the attack it is in and its share of
 * the shard's work. Readable by any client, never used to resume.
 */
export const ShardProgress = z.strictObject({
  /** Images in the shard. */
  images: z.int().min(1),
  /** The attack in progress ('' between phases). */
  attack: z.string(),
  /** Share of the shard's work done, its attacks weighed by what they cost (0 to 1). */
  fraction: z.number().min(0).max(1),
});
export type ShardProgress = z.infer<typeof ShardProgress>;

/** The `evaluationProgress` query of an evaluation child workflow: the shards planned and those finished. */
export const EvaluationShards = z.strictObject({
  role: EvaluationRole,
  /** Test images the evaluation covers, and in how many shards. */
  images: count,
  shards: count,
  shardsDone: count,
  /** Images in the finished shards. */
  imagesDone: count,
});
export type EvaluationShards = z.infer<typeof EvaluationShards>;

/** A running evaluation as a person follows it: finished shards plus the running shards' share of their work. */
export const EvaluationProgress = z.strictObject({
  ...EvaluationShards.shape,
  /** Images evaluated, counting a running shard by the fraction of its attacks it has done. */
  imagesEstimate: z.number().min(0),
  /** Attacks the running shards are in, first seen first. */
  attacks: z.array(z.string()),
  /** Seconds since the evaluation started. */
  elapsed: seconds,
});
export type EvaluationProgress = z.infer<typeof EvaluationProgress>;

/** What the extras activity hands back: the object-store key of its results. */
export const EvaluationExtrasRef = z.strictObject({ key: z.string().min(1), seconds, backend: Backend });
export type EvaluationExtrasRef = z.infer<typeof EvaluationExtrasRef>;

export const ReduceEvaluationInput = z.strictObject({
  ...EvaluateInput.shape,
  shards: z.array(EvaluateShardRef).min(1),
  extras: EvaluationExtrasRef,
  /** Wall-clock seconds of the whole evaluation, as the workflow saw them. */
  seconds,
});
export type ReduceEvaluationInput = z.infer<typeof ReduceEvaluationInput>;
