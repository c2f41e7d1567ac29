/**
 * The spec of a hardening run: one zod schema, the single truth for the CLI, the client, the workflow and the
 * generated JSON Schema (`schemas/spec.schema.json`).
 *
 * Objects are strict (a typo such as `epsilion` is an error), defaults are filled wherever one is sensible, so
 * `{ "version": 1 }` is a complete spec: adversarially train a small reference CNN on Fashion-MNIST at ε = 0.1.
 *
 * Workflow-safe: imports zod only (file loading lives in `schemas/load.ts`).
 */
import { z } from 'zod';
import { formatZodErrors } from './errors';

// ---------------------------------------------------------------------------------------------------------------
// Shared pieces

/** Default dataset: the Fashion-MNIST IDX folder shipped on the machines. */
export const DEFAULT_DATASET_SOURCE = '/usr/share/datasets/fashion-mnist';
/** Default task queues; the worker entry polls these unless told otherwise. */
export const DEFAULT_HEAVY_QUEUE = 'tempered-heavy';
export const DEFAULT_IO_QUEUE = 'tempered-io';

/** A duration as Temporal reads it: a number and a unit, e.g. `90s`, `2 minutes`, `12h`, `7d`. */
export const Duration = z
  .string()
  .regex(
    /^\d+(\.\d+)? ?(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$/,
    'expected a duration such as 90s, 2 minutes, 12h or 7d',
  )
  // A zero timeout makes Temporal refuse the activity and the workflow task fail forever behind "waiting".
  .refine((d) => !/^0+(\.0+)? ?[a-z]/.test(d), 'expected a duration above zero')
  .meta({ description: 'a number and a unit (ms, s, m, h, d, w), e.g. "90s", "2 minutes", "7d"' });
export type Duration = z.infer<typeof Duration>;

/** A SHA-256 digest in hex. */
export const Sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits (a SHA-256 digest)');

const s3UriPattern = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/\S*)?$/;
/** `s3://bucket/key`. */
export const S3Uri = z
  .string()
  .regex(s3UriPattern, 'expected s3://bucket/key')
  .meta({ description: 's3://bucket/key' });

/** Where data comes from: a local path, an http(s):// URL or s3://bucket/key. */
export const Source = z
  .string()
  .max(2048)
  .regex(
    /^(https?:\/\/[^/\s]+(\/\S*)?|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/\S*)?|(?![A-Za-z][A-Za-z0-9+.-]*:\/\/)\S.*)$/,
    'expected a local path, an http(s):// URL or s3://bucket/key',
  )
  // The spec travels in every activity input and so into Temporal's history: no credentials in a URL.
  .refine(
    (s) => !/^https?:\/\/[^/\s]*@/.test(s),
    'expected a URL without user:password@ (credentials would be stored in the run history)',
  )
  .meta({ description: 'a local path, an http(s):// URL or s3://bucket/key' });

/** Which kind of location a `Source` names. */
export function sourceKind(source: string): 'local' | 'http' | 's3' {
  if (/^https?:\/\//.test(source)) return 'http';
  if (source.startsWith('s3://')) return 's3';
  return 'local';
}

const fraction = (description: string) => z.number().min(0).max(1).meta({ description });
const Norm = z.enum(['linf', 'l2']).meta({ description: 'the threat model: L∞ or L2 ball' });

// ---------------------------------------------------------------------------------------------------------------
// Sections

export const DatasetSpec = z
  .strictObject({
    source: Source.default(DEFAULT_DATASET_SOURCE),
    format: z
      .enum(['idx', 'cifar10-binary', 'image-folder'])
      .default('idx')
      .meta({ description: 'idx (MNIST/Fashion-MNIST), cifar10-binary, or image-folder (one folder per class)' }),
    sha256: z
      .record(z.string().min(1).max(1024), Sha256)
      .optional()
      .meta({ description: 'expected SHA-256 per file name; a mismatch fails the run (ChecksumMismatch)' }),
    trainSize: z.int().min(1).optional().meta({ description: 'train subset size; all images when absent' }),
    testSize: z.int().min(1).optional().meta({ description: 'test subset size; all images when absent' }),
    subset: z
      .enum(['first', 'stratified'])
      .default('stratified')
      .meta({ description: 'how a subset is drawn: the first N, or N balanced over classes (seeded)' }),
    seed: z.int().min(0).default(0).meta({ description: 'seed of the subset draw' }),
    imageSize: z
      .int()
      .min(8)
      .max(1024)
      .default(32)
      .meta({ description: 'side in pixels images are resized to (image-folder only)' }),
  })
  .meta({ description: 'the dataset to harden on' });
export type DatasetSpec = z.infer<typeof DatasetSpec>;

export const Architecture = z.enum(['reference-cnn', 'small-resnet']);
export type Architecture = z.infer<typeof Architecture>;

/** Train a fresh baseline with a small budget (when no model exists yet). */
export const TrainBaselineSource = z.strictObject({
  kind: z.literal('train-baseline'),
  epochs: z.int().min(1).max(1000).default(2),
  trainSize: z.int().min(1).optional().meta({ description: 'images used; dataset.trainSize when absent' }),
  batchSize: z.int().min(1).max(4096).default(128),
  learningRate: z.number().positive().max(10).default(0.001),
  seed: z.int().min(0).default(0),
});
export type TrainBaselineSource = z.infer<typeof TrainBaselineSource>;

export const ArtifactSource = z.strictObject({
  kind: z.literal('artifact'),
  ref: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected "production" or a version such as v3')
    .default('production')
    .meta({ description: '"production" (the pointer) or a version in the object store' }),
  fallback: z
    .union([
      z.literal('train-baseline').transform(() => TrainBaselineSource.parse({ kind: 'train-baseline' })),
      TrainBaselineSource,
    ])
    .optional()
    .meta({ description: 'train a baseline when the artifact does not exist yet' }),
});
export type ArtifactSource = z.infer<typeof ArtifactSource>;

export const FolderSource = z.strictObject({
  kind: z.literal('folder'),
  path: z.string().min(1).max(2048).meta({ description: 'a folder with model.json and weights' }),
});
export const S3ModelSource = z.strictObject({ kind: z.literal('s3'), uri: S3Uri });

export const ModelSource = z.discriminatedUnion('kind', [
  ArtifactSource,
  FolderSource,
  S3ModelSource,
  TrainBaselineSource,
]);
export type ModelSource = z.infer<typeof ModelSource>;

export const ModelSpec = z
  .strictObject({
    source: ModelSource.prefault({ kind: 'train-baseline' }),
    architecture: Architecture.default('reference-cnn').meta({
      description: 'architecture of a newly trained baseline',
    }),
  })
  .meta({ description: 'the model to harden' });
export type ModelSpec = z.infer<typeof ModelSpec>;

export const TrainingAttackSpec = z
  .strictObject({
    norm: Norm.default('linf'),
    steps: z.int().min(1).max(1000).default(7).meta({ description: 'PGD steps (method fgsm-rs takes one)' }),
    stepFraction: z
      .number()
      .positive()
      .max(10)
      .optional()
      .meta({
        description:
          "the attack's step as a fraction of the current ε; the method's published default when absent " +
          '(0.25; fgsm-rs 1.25)',
      }),
    stepSize: z.number().positive().max(10).optional().meta({
      description: 'deprecated: the older name of stepFraction (accepted in spec version 1 with a warning)',
      deprecated: true,
    }),
    restarts: z.int().min(1).max(100).default(1),
    randomStart: z.boolean().default(true),
  })
  .transform(({ stepSize, stepFraction, ...rest }) => ({
    ...rest,
    ...((stepFraction ?? stepSize) !== undefined ? { stepFraction: stepFraction ?? stepSize } : {}),
  }))
  .meta({ description: 'the attack used to craft training examples' });
/** @deprecated the older name of `TrainingAttackSpec` */
export const TrainingAttack = TrainingAttackSpec;
export type TrainingAttackSpec = z.infer<typeof TrainingAttackSpec>;
/** @deprecated the older name of `TrainingAttackSpec` */
export type TrainingAttack = TrainingAttackSpec;

export const EpsilonStepSpec = z.strictObject({
  epoch: z.int().min(1).meta({ description: 'first epoch (1-based) this ε applies to' }),
  value: z.number().min(0).max(255),
});
export type EpsilonStepSpec = z.infer<typeof EpsilonStepSpec>;
/** @deprecated the older name of `EpsilonStepSpec` */
export const EpsilonStep = EpsilonStepSpec;
/** @deprecated the older name of `EpsilonStepSpec` */
export type EpsilonStep = EpsilonStepSpec;

/**
 * ε during training. The core's `EpsilonSchedule` (tensor/training/config.ts) uses the same `kind` words; its steps
 * count progress from 0 (`atEpoch`, fractional) where the spec counts epochs from 1 (`epoch`): the mapping
 * (activities/spec-to-core.ts) turns epoch n into atEpoch n − 1.
 */
export const EpsilonScheduleSpec = z
  .strictObject({
    max: z.number().positive().max(255).default(0.1).meta({ description: 'the largest ε (pixels scaled to [0, 1])' }),
    kind: z
      .enum(['constant', 'linear', 'cosine', 'steps'])
      .default('linear')
      .meta({ description: 'constant; linear or cosine ramp over warmupEpochs; or the steps list' }),
    warmupEpochs: z.int().min(0).default(1).meta({ description: 'epochs to ramp ε from 0 to max (linear, cosine)' }),
    steps: z
      .array(EpsilonStepSpec)
      .min(1)
      .optional()
      .meta({ description: 'kind steps: ε per epoch range; before the first step ε is 0' }),
  })
  .meta({ description: 'ε during training' });
export type EpsilonScheduleSpec = z.infer<typeof EpsilonScheduleSpec>;
/** @deprecated the older name of `EpsilonScheduleSpec` */
export const EpsilonSchedule = EpsilonScheduleSpec;
/** @deprecated the older name of `EpsilonScheduleSpec` */
export type EpsilonSchedule = EpsilonScheduleSpec;

export const ProbeSpec = z
  .strictObject({
    images: z.int().min(0).max(10000).default(256).meta({
      description:
        'training images held out (at most a tenth of them) for a PGD probe at epsilon.max after each epoch; 0: none',
    }),
    steps: z.int().min(1).max(100).default(5).meta({ description: 'PGD steps of the probe (step ε/4, random start)' }),
    maxDrop: fraction('a fall of the probe robust accuracy by more than this in one epoch is catastrophic').default(
      0.2,
    ),
  })
  .meta({ description: 'the guard against catastrophic and robust overfitting' });
export type ProbeSpec = z.infer<typeof ProbeSpec>;

export const TrainingSpec = z
  .strictObject({
    epochs: z.int().min(1).max(10000).default(5),
    batchSize: z.int().min(1).max(4096).default(128),
    optimizer: z.enum(['adam', 'sgd']).default('adam'),
    momentum: z.number().min(0).lt(1).default(0.9).meta({ description: 'sgd only' }),
    learningRate: z.number().positive().max(10).default(0.001),
    lrSchedule: z
      .enum(['constant', 'cosine', 'cyclic'])
      .default('constant')
      .meta({
        description:
          'constant; cosine decay from learningRate to 0 over the epochs; or cyclic: one triangle from 0 up to ' +
          'learningRate at 40% of the run and down to 0 at its end (Wong et al. 2020)',
      }),
    weightDecay: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .meta({
        description:
          'λ; adam: decoupled as AdamW (w ← w·(1 − lr·λ) before the step); sgd: L2 added to the gradient ' +
          '(g ← g + λ·w), as torch.optim.SGD',
      }),
    method: z
      .enum(['pgd', 'fgsm-rs', 'trades', 'mart'])
      .optional()
      .meta({
        description:
          'the recipe: pgd (Madry et al. 2018), fgsm-rs (one FGSM step of 1.25ε from a uniform start, Wong et al. ' +
          '2020; use lrSchedule cyclic), trades (Zhang et al. 2019, β 6), mart (Wang et al. 2020, β 5); trades when ' +
          'tradesBeta is set, else pgd, when absent',
      }),
    beta: z.number().positive().max(100).optional().meta({
      description: 'trades and mart: the weight of the robustness term; the published default (6, 5) when absent',
    }),
    tradesBeta: z
      .number()
      .positive()
      .max(100)
      .optional()
      .meta({ description: 'the older form of method trades with this beta' }),
    labelSmoothing: z.number().min(0).lt(1).default(0),
    gradientAccumulation: z.int().min(1).max(1024).default(1),
    cleanFraction: fraction('share of each batch trained on clean images').default(0),
    checkpointEveryBatches: z.int().min(1).default(50),
    seed: z.int().min(0).default(0),
    maxLoss: z
      .number()
      .positive()
      .default(50)
      .meta({ description: 'a loss above this (or NaN) fails the run as Diverged' }),
    probe: ProbeSpec.prefault({}),
    keepBest: z.boolean().default(true).meta({
      description: 'promote the epoch with the best probe robust accuracy, not necessarily the last',
    }),
    onOverfitting: z
      .enum(['warn', 'fail'])
      .default('warn')
      .meta({
        description:
          'catastrophic overfitting (the probe robust accuracy falls by more than probe.maxDrop in one epoch): ' +
          'training stops at the previous epoch and the run goes on with a warning, or fails (CatastrophicOverfitting)',
      }),
  })
  .meta({ description: 'the adversarial training budget' });
export type TrainingSpec = z.infer<typeof TrainingSpec>;

export const EvalAttackSpec = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a name of letters, digits, . _ -'),
    norm: Norm.default('linf'),
    eps: z.number().min(0).max(255).optional().meta({ description: 'the attack ε; epsilon.max when absent' }),
    steps: z.int().min(1).max(10000).default(20),
    restarts: z.int().min(1).max(100).default(1),
    stepFraction: z.number().positive().max(10).optional().meta({
      description: 'PGD step as a fraction of ε (ε/4, 0.25, when absent, as in the reference evaluation)',
    }),
    stepSize: z.number().positive().max(10).optional().meta({
      description: 'deprecated: the older name of stepFraction (accepted in spec version 1 with a warning)',
      deprecated: true,
    }),
    randomStart: z.boolean().default(true),
  })
  .transform(({ stepSize, stepFraction, ...rest }) => ({ ...rest, stepFraction: stepFraction ?? stepSize ?? 0.25 }));
export type EvalAttackSpec = z.infer<typeof EvalAttackSpec>;
/** @deprecated the older name of `EvalAttackSpec` */
export const EvalAttack = EvalAttackSpec;
/** @deprecated the older name of `EvalAttackSpec` */
export type EvalAttack = EvalAttackSpec;

/**
 * The evaluation suites. `standard` is AutoAttack's standard suite (the per-example worst case a security team
 * signs), `plus` its extended suite, `fast` APGD-CE + APGD-T over 3 targets (nightly runs), `custom` the
 * `evaluation.attacks` list alone.
 */
export const SuiteName = z.enum(['standard', 'plus', 'fast', 'custom']);
export type SuiteName = z.infer<typeof SuiteName>;

/** The attacks each built-in suite runs, in order (their names are what `gate.attack` may name). */
export const SUITE_ATTACK_NAMES: Record<Exclude<SuiteName, 'custom'>, readonly string[]> = {
  standard: ['apgd-ce', 'apgd-t', 'fab-t', 'square'],
  plus: ['apgd-ce', 'apgd-dlr', 'square', 'apgd-t', 'fab-t'],
  fast: ['apgd-ce', 'apgd-t'],
};

/** The suite of a spec that names none and lists no attacks: the one a security team signs. */
export const DEFAULT_SUITE = 'standard' satisfies SuiteName;
/** The attack list of a spec that lists none: PGD-20, step ε/4 (the reported figure beside the suite's). */
export const DEFAULT_EVAL_ATTACKS = [{ name: 'pgd20' }] as const;

export const EvaluationSpec = z
  .strictObject({
    suite: SuiteName.optional().meta({
      description:
        'standard (AutoAttack), plus, fast (APGD-CE + APGD-T, 3 targets) or custom (the attacks list alone); ' +
        'custom when the spec lists attacks, standard otherwise',
    }),
    attacks: z
      .array(EvalAttackSpec)
      .min(1)
      .optional()
      .meta({
        description:
          'PGD attacks run on their own (each on every image): the whole evaluation for suite custom, the ' +
          'reported figures beside the suite otherwise; one PGD-20 (step ε/4) when absent',
      }),
    epsCurve: z
      .array(z.number().min(0).max(255))
      .optional()
      .meta({ description: 'ε values of the robustness curve; 0, ¼, ½, ¾, 1 and 1.5 × epsilon.max when absent' }),
    testImages: z.int().min(1).default(1000).meta({ description: 'test images the attacks run on' }),
    batchSize: z.int().min(1).max(4096).default(256),
    examples: z.int().min(0).max(100).default(8).meta({ description: 'adversarial examples kept for the report' }),
    shardImages: z
      .int()
      .min(1)
      .default(250)
      .meta({ description: 'test images per shard; each shard is one activity on the heavy queue' }),
    sanityImages: z
      .int()
      .min(0)
      .max(10000)
      .default(64)
      .meta({ description: 'test images the gradient-masking sanity checks attack (0 skips them)' }),
    maxConcurrentShards: z
      .int()
      .min(1)
      .max(500)
      .default(8)
      .meta({ description: 'shards of one evaluation in flight at once (about one per heavy worker)' }),
  })
  .meta({ description: 'how the baseline and the hardened model are measured' });
export type EvaluationSpec = z.infer<typeof EvaluationSpec>;

export const GateSpec = z
  .strictObject({
    minRobustAccuracy: fraction('the hardened model must reach this robust accuracy').default(0.5),
    maxCleanAccuracyDrop: fraction('clean accuracy may fall at most this much below the baseline').default(0.1),
    attack: z
      .string()
      .optional()
      .meta({
        description:
          'the evaluation attack the gate reads (a suite attack or one of evaluation.attacks); the per-example ' +
          'worst case over every attack when absent',
      }),
    failOnMaskingFlags: z
      .boolean()
      .default(true)
      .meta({ description: 'refuse promotion when a gradient-masking sanity check fires' }),
    requireApproval: z.boolean().default(false).meta({ description: 'a person approves or rejects after the gate' }),
    approvalTimeout: Duration.default('7d').meta({ description: 'no decision by then: rejected (timeout)' }),
  })
  .meta({ description: 'what the hardened model must achieve to be promoted' });
export type GateSpec = z.infer<typeof GateSpec>;

export const ArtifactsSpec = z
  .strictObject({
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3-63 of a-z 0-9 . -)')
      .default('tempered'),
    prefix: z
      .string()
      .max(512)
      .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'expected key segments separated by /, no leading slash')
      .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'expected no . or .. segments')
      .default('models'),
    modelName: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected lowercase letters, digits and -, at most 63')
      .default('classifier')
      .meta({ description: 'names the artifact and the workflow id (harden-<modelName>-<date>)' }),
  })
  .meta({ description: 'where models are stored' });
export type ArtifactsSpec = z.infer<typeof ArtifactsSpec>;

export const ComputeSpec = z
  .strictObject({
    heavyQueue: z.string().min(1).max(200).default(DEFAULT_HEAVY_QUEUE),
    ioQueue: z.string().min(1).max(200).default(DEFAULT_IO_QUEUE),
    backend: z.enum(['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']).default('auto'),
    threads: z
      .union([z.literal('auto'), z.int().min(1).max(64)])
      .default('auto')
      .meta({
        description:
          "training threads: each batch is cut into this many shards trained side by side ('auto': the worker's " +
          'cores on wasm and cpu; 1 on tensorflow and tensorflow-gpu, whose own thread pools use the cores). ' +
          'The shards change the result as the replicas of any data-parallel ' +
          'training do (their own attack noise and batch-norm statistics), so a run keeps the count it started ' +
          'with when it resumes on another machine; fewer threads there run the shards in turn',
      }),
    trainingTimeout: Duration.default('12h').meta({ description: 'start-to-close of one training attempt' }),
    evaluationTimeout: Duration.default('2h').meta({ description: 'start-to-close of one evaluation attempt' }),
    heartbeatTimeout: Duration.default('2m').meta({ description: 'training attempts silent this long are retried' }),
    maxAttemptsWithoutProgress: z
      .int()
      .min(1)
      .max(100)
      .default(3)
      .meta({
        description:
          'training fails after this many attempts in a row that did not advance its checkpoint; attempts that did ' +
          'advance it are free (a worker may be preempted any number of times)',
      }),
    cache: z
      .boolean()
      .default(true)
      .meta({
        description:
          'reuse the output of model preparation and evaluations from an earlier run with the same inputs (dataset ' +
          'and weight hashes, the stage config, the package version); false (or --no-cache) recomputes everything',
      }),
    evaluationHeartbeatTimeout: Duration.default('2m').meta({
      description: 'evaluation shards silent this long are retried on another worker (one attack batch must fit)',
    }),
  })
  .meta({ description: 'where and how the work runs' });
export type ComputeSpec = z.infer<typeof ComputeSpec>;

// ---------------------------------------------------------------------------------------------------------------
// The spec

const SpecObject = z.strictObject({
  $schema: z.string().max(2048).optional().meta({ description: 'the JSON Schema this file follows (for editors)' }),
  version: z.literal(1).meta({ description: 'spec format version' }),
  description: z.string().max(4096).optional(),
  dataset: DatasetSpec.prefault({}),
  model: ModelSpec.prefault({}),
  attack: TrainingAttackSpec.prefault({}),
  epsilon: EpsilonScheduleSpec.prefault({}),
  training: TrainingSpec.prefault({}),
  evaluation: EvaluationSpec.prefault({}),
  gate: GateSpec.prefault({}),
  artifacts: ArtifactsSpec.prefault({}),
  compute: ComputeSpec.prefault({}),
});

/** The few checks that span fields. They run once every field is valid; JSON Schema does not carry them. */
function crossFieldChecks(s: z.output<typeof SpecObject>, ctx: z.core.$RefinementCtx<z.output<typeof SpecObject>>) {
  // zod runs refinements after non-fatal issues (a number out of range) too: check only a fully valid spec.
  if (ctx.issues.length > 0) return;
  const issue = (path: (string | number)[], input: unknown, message: string) =>
    ctx.addIssue({ code: 'custom', path, input, message });
  const { epsilon, training, evaluation, gate } = s;
  if (epsilon.kind === 'steps' && !epsilon.steps)
    issue(['epsilon', 'steps'], undefined, 'epsilon.kind is steps, so a steps list is required');
  if (epsilon.kind !== 'steps' && epsilon.steps)
    issue(['epsilon', 'steps'], epsilon.steps, `epsilon.kind is ${epsilon.kind}: steps apply only to kind steps`);
  (epsilon.steps ?? []).forEach((step, i) => {
    if (step.epoch > training.epochs)
      issue(
        ['epsilon', 'steps', i, 'epoch'],
        step.epoch,
        `expected an epoch within training.epochs (1..${training.epochs})`,
      );
    const prev = epsilon.steps?.[i - 1];
    if (prev && step.epoch <= prev.epoch)
      issue(['epsilon', 'steps', i, 'epoch'], step.epoch, `expected epochs in increasing order (after ${prev.epoch})`);
    if (step.value > epsilon.max)
      issue(['epsilon', 'steps', i, 'value'], step.value, `expected a value <= epsilon.max (${epsilon.max})`);
  });
  if ((epsilon.kind === 'linear' || epsilon.kind === 'cosine') && epsilon.warmupEpochs > training.epochs)
    issue(
      ['epsilon', 'warmupEpochs'],
      epsilon.warmupEpochs,
      `expected at most training.epochs (${training.epochs}) warm-up epochs`,
    );
  const listed = evaluation.attacks ?? [];
  const names = listed.map((a) => a.name);
  names.forEach((name, i) => {
    if (names.indexOf(name) !== i)
      issue(['evaluation', 'attacks', i, 'name'], name, 'expected a name not used by an earlier attack');
  });
  const suite = evaluation.suite ?? (evaluation.attacks ? 'custom' : DEFAULT_SUITE);
  const suiteNames = suite === 'custom' ? [] : SUITE_ATTACK_NAMES[suite];
  suiteNames.forEach((name) => {
    const i = names.indexOf(name);
    if (i >= 0) issue(['evaluation', 'attacks', i, 'name'], name, `expected a name the ${suite} suite does not use`);
  });
  const known = [...suiteNames, ...(evaluation.attacks ? names : DEFAULT_EVAL_ATTACKS.map((a) => a.name))];
  if (gate.attack !== undefined && !known.includes(gate.attack))
    issue(['gate', 'attack'], gate.attack, `expected one of the evaluation attacks: ${known.join(', ')}`);
}

/** Fills the defaults that depend on other fields (attack ε and the ε curve follow epsilon.max). */
function resolveDerived(s: z.output<typeof SpecObject>) {
  const max = s.epsilon.max;
  const round = (x: number) => Math.round(x * 1e6) / 1e6;
  return {
    ...s,
    evaluation: {
      ...s.evaluation,
      suite: s.evaluation.suite ?? (s.evaluation.attacks ? 'custom' : DEFAULT_SUITE),
      attacks: (s.evaluation.attacks ?? DEFAULT_EVAL_ATTACKS.map((a) => EvalAttack.parse(a))).map((a) => ({
        ...a,
        eps: a.eps ?? max,
      })),
      epsCurve: s.evaluation.epsCurve ?? [0, 0.25, 0.5, 0.75, 1, 1.5].map((f) => round(f * max)),
    },
  };
}

/**
 * The spec of a hardening run. Parsing is idempotent: a parsed spec parses to itself, so the client may parse
 * at the edge and the workflow parses again.
 */
export const Spec = SpecObject.superRefine(crossFieldChecks)
  .transform(resolveDerived)
  .meta({ title: 'tempered hardening run', description: 'the spec of a tempered hardening run' });
/** A parsed spec: every default filled. */
export type Spec = z.output<typeof Spec>;
/** What a person writes: most fields optional. */
export type SpecInput = z.input<typeof Spec>;
/** A parsed evaluation attack, ε resolved. */
export type ResolvedEvalAttack = Spec['evaluation']['attacks'][number];

/** The test images an evaluation reads: `evaluation.testImages`, capped by the subset and the split's size. */
export function evaluatedImages(spec: Pick<Spec, 'dataset' | 'evaluation'>, testCount = Infinity): number {
  return Math.min(spec.evaluation.testImages, spec.dataset.testSize ?? Infinity, testCount);
}

/**
 * Every problem of a spec, one line each, e.g. `training.epochs: got -1, expected an integer >= 1`.
 * Pass an error from `safeParseSpec` (it reports inputs) so each line can say what was given.
 */
export const formatSpecErrors = (error: z.ZodError): string[] => formatZodErrors(error, SpecObject);

/** Thrown by `parseSpec`: `lines` lists every problem, one per line, path first. */
export class SpecError extends Error {
  constructor(
    readonly lines: string[],
    readonly origin?: string,
  ) {
    super(`${origin ? `${origin}: ` : ''}invalid spec\n${lines.map((l) => `  ${l}`).join('\n')}`);
    this.name = 'SpecError';
  }
}

/**
 * Deprecated keys a spec input still uses, one line each (`attack.stepSize: deprecated, …`), for the edge that
 * reads the file to print as warnings. Spec version 1 accepts them; the next version will not.
 */
export function specWarnings(input: unknown): string[] {
  const out: string[] = [];
  const attack = (input as { attack?: unknown } | null)?.attack;
  if (attack && typeof attack === 'object' && 'stepSize' in attack) {
    out.push(
      'attack.stepSize: deprecated, write attack.stepFraction (the same fraction of ε)' +
        ('stepFraction' in attack ? '; attack.stepFraction is set and wins' : ''),
    );
  }
  const attacks = (input as { evaluation?: { attacks?: unknown } } | null)?.evaluation?.attacks;
  (Array.isArray(attacks) ? attacks : []).forEach((a: unknown, i) => {
    if (a && typeof a === 'object' && 'stepSize' in a) {
      out.push(
        `evaluation.attacks.${i}.stepSize: deprecated, write evaluation.attacks.${i}.stepFraction (the same ` +
          'fraction of ε)' +
          ('stepFraction' in a ? `; evaluation.attacks.${i}.stepFraction is set and wins` : ''),
      );
    }
  });
  return out;
}

/** Validates without throwing; issues carry their input, so `formatSpecErrors` can say what was given. */
export const safeParseSpec = (input: unknown) => Spec.safeParse(input, { reportInput: true });

/** Validates a spec object; throws a `SpecError` listing every problem at once. */
export function parseSpec(input: unknown, origin?: string): Spec {
  const result = safeParseSpec(input);
  if (!result.success) throw new SpecError(formatSpecErrors(result.error), origin);
  return result.data;
}
