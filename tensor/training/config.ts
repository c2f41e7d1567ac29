import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * How ε grows over training. `progress` is measured in fractional epochs at the start of a batch
 * (epoch + batch / batchesPerEpoch).
 * - constant: ε_max from the first batch;
 * - linear: min(ε_max · progress / warmupEpochs, ε_max);
 * - cosine: ε_max · (1 − cos(π · min(progress / warmupEpochs, 1))) / 2;
 * - steps: the ε of the last `steps` entry whose atEpoch ≤ progress (0 before the first one).
 * `kind` names the same shapes as the spec's `epsilon.kind`; `atEpoch` is progress counted from 0 (fractional),
 * where the spec's `steps[].epoch` counts epochs from 1.
 */
export const EpsilonSchedule = z
  .strictObject({
    max: z.number().min(0).meta({ description: 'the largest ε, in pixel units (images are in [0,1])' }),
    kind: z.enum(['constant', 'linear', 'cosine', 'steps']).default('constant'),
    warmupEpochs: z.number().min(0).default(0).meta({ description: 'fractional epochs of the linear/cosine ramp' }),
    steps: z
      .array(z.strictObject({ atEpoch: z.number().min(0), eps: z.number().min(0) }))
      .optional()
      .meta({ description: 'for kind "steps": ε from atEpoch (0-based, fractional epochs) on, in ascending order' }),
  })
  .superRefine((s, ctx) => {
    if (s.kind === 'steps') {
      if (!s.steps || s.steps.length === 0) {
        ctx.addIssue({ code: 'custom', message: 'schedule "steps" needs a non-empty steps list', path: ['steps'] });
        return;
      }
      for (let i = 0; i < s.steps.length; i++) {
        const st = s.steps[i];
        if (i > 0 && st.atEpoch <= s.steps[i - 1].atEpoch) {
          ctx.addIssue({
            code: 'custom',
            message: `steps must be in strictly ascending atEpoch order, but entry ${i} (atEpoch ${st.atEpoch}) follows atEpoch ${s.steps[i - 1].atEpoch}`,
            path: ['steps', i, 'atEpoch'],
          });
        }
        if (st.eps > s.max) {
          ctx.addIssue({
            code: 'custom',
            message: `steps[${i}].eps = ${st.eps} exceeds max = ${s.max}`,
            path: ['steps', i, 'eps'],
          });
        }
      }
    } else if (s.steps !== undefined) {
      ctx.addIssue({ code: 'custom', message: `steps is only used by kind "steps", not "${s.kind}"` });
    }
  });
export type EpsilonSchedule = z.infer<typeof EpsilonSchedule>;

/**
 * The learning-rate schedule, applied to the base `learningRate` at every optimizer step.
 * - warmupEpochs > 0: linear ramp from 0 to the base rate over that many epochs (the first step already gets
 *   base · (1/batchesPerEpoch) / warmupEpochs), then
 * - constant: the base rate; step: base · gamma^floor(progress / stepEvery); cosine: from the base rate down to
 *   minLearningRate at the end of training, over the epochs after the warm-up;
 * - cyclic (one triangle, Wong et al. 2020): linear from 0 up to the base rate at `cyclicPeak` of the run, then
 *   linear down to 0 at its end, evaluated like the warm-up at the end of the triggering batch
 *   (progress + 1/batchesPerEpoch), so neither the first nor the last step has rate 0.
 */
export const LrSchedule = z
  .strictObject({
    type: z.enum(['constant', 'step', 'cosine', 'cyclic']).default('constant'),
    warmupEpochs: z.number().min(0).default(0),
    stepEvery: z.number().positive().optional().meta({ description: 'type "step": epochs between decays' }),
    gamma: z.number().positive().max(1).default(0.1).meta({ description: 'type "step": factor per decay' }),
    minLearningRate: z.number().min(0).default(0).meta({ description: 'type "cosine": the floor' }),
    cyclicPeak: z
      .number()
      .gt(0)
      .lt(1)
      .optional()
      .meta({ description: 'type "cyclic": where the rate peaks, as a share of the run (0.4 when absent)' }),
  })
  .superRefine((s, ctx) => {
    if (s.type === 'step' && s.stepEvery === undefined) {
      ctx.addIssue({ code: 'custom', message: 'lrSchedule type "step" needs stepEvery (epochs)', path: ['stepEvery'] });
    }
  });
export type LrSchedule = z.infer<typeof LrSchedule>;

/**
 * The hardening recipes (the outer loss and how its training examples are crafted):
 * - pgd: Madry et al. 2018, cross-entropy on PGD examples;
 * - fgsm-rs: Wong et al. 2020 ("Fast is better than free"), cross-entropy on one FGSM step of
 *   `attack.stepFraction`·ε (1.25 published) from a uniform start in the ε-ball;
 * - trades: Zhang et al. 2019, CE(clean) + β·KL(p_clean ‖ p_adv), β = 6 published;
 * - mart: Wang et al. 2020, BCE(adv) + β·KL(p_clean ‖ p_adv)·(1 − p_clean(y)), β = 5 in the authors' code.
 */
export const Recipe = z.enum(['pgd', 'fgsm-rs', 'trades', 'mart']);
export type Recipe = z.infer<typeof Recipe>;

/** The published defaults of each recipe: the one table the spec mapping and the reference script read. */
export const RECIPE_DEFAULTS = {
  pgd: { stepFraction: 0.25, beta: undefined },
  'fgsm-rs': { stepFraction: 1.25, beta: undefined },
  trades: { stepFraction: 0.25, beta: 6 },
  mart: { stepFraction: 0.25, beta: 5 },
} as const satisfies Record<Recipe, { stepFraction: number; beta: number | undefined }>;

/** The inner maximisation used to craft training examples. */
export const TrainingAttack = z.strictObject({
  norm: z.enum(['linf', 'l2']).default('linf'),
  steps: z.int().min(1).max(1000).default(7).meta({ description: 'PGD steps (fgsm-rs always takes one)' }),
  stepFraction: z.number().positive().optional().meta({
    description:
      "the attack's step as a fraction of the current ε (absent: the recipe default, 0.25 or 1.25 for fgsm-rs)",
  }),
  restarts: z.int().min(1).max(100).default(1),
  randomStart: z.boolean().default(true),
});

export type TrainingAttack = z.infer<typeof TrainingAttack>;

export const TrainingConfig = z
  .strictObject({
    epochs: z.int().min(1).max(100000),
    batchSize: z.int().min(1).max(65536),
    optimizer: z.enum(['adam', 'sgd']).default('adam'),
    momentum: z.number().min(0).lt(1).default(0).meta({ description: 'sgd only; 0 means plain SGD' }),
    learningRate: z.number().positive(),
    lrSchedule: LrSchedule.prefault({}),
    epsilon: EpsilonSchedule.optional().meta({ description: 'absent (or max 0): standard training on clean data' }),
    attack: TrainingAttack.prefault({}),
    method: Recipe.optional().meta({
      description: 'the recipe (see Recipe); absent: "trades" when tradesBeta is set, else "pgd"',
    }),
    beta: z.number().positive().optional().meta({
      description: 'trades and mart: the weight β of the robustness term (absent: the recipe default, 6 or 5)',
    }),
    tradesBeta: z
      .number()
      .positive()
      .optional()
      .meta({
        description:
          'older form of method "trades" with beta: TRADES loss CE(clean) + β·KL(p_clean ‖ p_adv); the inner ' +
          'attack maximises the KL from x + 0.001·N(0,1) (one start: attack.restarts and attack.randomStart do ' +
          'not apply)',
      }),
    weightDecay: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .meta({
        description:
          'λ (absent: 0). Adam: decoupled, as AdamW (w ← w·(1 − lr·λ) before the Adam step); sgd: coupled L2 as ' +
          'torch.optim.SGD (g ← g + λ·w before momentum)',
      }),
    labelSmoothing: z.number().min(0).lt(1).default(0),
    gradientAccumulation: z.int().min(1).max(1024).default(1).meta({ description: 'batches per optimizer step' }),
    cleanFraction: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .meta({ description: 'share of each batch left clean (its first round(f·n) examples; the order is shuffled)' }),
    seed: z.int().min(0).max(0xffffffff).default(0),
    shards: z
      .int()
      .min(1)
      .max(64)
      .optional()
      .meta({
        description:
          'data parallelism: each batch is cut into this many contiguous shards, each attacked with its own seed ' +
          'and differentiated on its own (batch-norm statistics per shard, then averaged), as the replicas of any ' +
          'data-parallel training; the gradient is their size-weighted mean. The result depends on the shard ' +
          'count, never on how many threads run the shards. Absent or 1: the whole batch at once',
      }),
    guard: z
      .strictObject({
        probeImages: z.int().min(1).meta({
          description: 'training images held out of training for the probe (capped at a tenth of the data)',
        }),
        steps: z.int().min(1).max(1000).default(5).meta({ description: 'PGD steps of the probe (step ε/4)' }),
        maxDrop: z.number().min(0).max(1).default(0.2).meta({
          description: 'a fall of the probe robust accuracy by more than this in one epoch stops training',
        }),
        keepBest: z.boolean().default(true).meta({
          description: 'at the end, load the weights of the epoch with the best probe robust accuracy',
        }),
      })
      .optional()
      .meta({
        description:
          'after each epoch, PGD at epsilon.max on held-out training images (adversarial runs only); absent: none',
      }),
    divergence: z
      .strictObject({
        maxLoss: z.number().positive().default(100).meta({ description: 'a batch loss above this stops training' }),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.optimizer === 'adam' && c.momentum !== 0) {
      ctx.addIssue({ code: 'custom', message: 'momentum applies to optimizer "sgd" only', path: ['momentum'] });
    }
    if (c.tradesBeta !== undefined && c.method !== undefined && c.method !== 'trades') {
      ctx.addIssue({
        code: 'custom',
        message: `tradesBeta applies to method "trades", not "${c.method}"`,
        path: ['tradesBeta'],
      });
    }
    if (c.tradesBeta !== undefined && c.beta !== undefined && c.beta !== c.tradesBeta) {
      ctx.addIssue({ code: 'custom', message: 'give beta or tradesBeta, not both', path: ['tradesBeta'] });
    }
    const m = recipeOf(c);
    if (c.beta !== undefined && m !== 'trades' && m !== 'mart') {
      ctx.addIssue({
        code: 'custom',
        message: `beta applies to methods "trades" and "mart", not "${m}"`,
        path: ['beta'],
      });
    }
  });
export type TrainingConfig = z.infer<typeof TrainingConfig>;
export type TrainingConfigInput = z.input<typeof TrainingConfig>;

/**
 * Renames the keys of configs written by older builds (checkpoint headers): `attack.stepSizeFraction` is now
 * `attack.stepFraction`, `epsilon.schedule` is `epsilon.kind`. Returns the input itself when nothing needed renaming.
 */
export function migrateTrainingConfig(input: unknown): unknown {
  if (!input || typeof input !== 'object') return input;
  let out = input as Record<string, unknown>;
  const attack = out.attack as Record<string, unknown> | undefined;
  if (attack && typeof attack === 'object' && 'stepSizeFraction' in attack) {
    const { stepSizeFraction, ...rest } = attack;
    out = { ...out, attack: { ...rest, stepFraction: stepSizeFraction } };
  }
  const epsilon = out.epsilon as Record<string, unknown> | undefined;
  if (epsilon && typeof epsilon === 'object' && 'schedule' in epsilon) {
    const { schedule, ...rest } = epsilon;
    out = { ...out, epsilon: { ...rest, kind: schedule } };
  }
  return out;
}

/** Parses a training config, filling defaults; throws an Error listing every problem. */
export function parseTrainingConfig(input: unknown): TrainingConfig {
  const r = TrainingConfig.safeParse(input);
  if (!r.success) throw new Error(`invalid training config:\n${z.prettifyError(r.error)}`);
  return r.data;
}

/** The recipe a config runs: `method`, else "trades" when the older `tradesBeta` is set, else "pgd". */
export function recipeOf(c: Pick<TrainingConfig, 'method' | 'tradesBeta'>): Recipe {
  return c.method ?? (c.tradesBeta !== undefined ? 'trades' : 'pgd');
}

/** β of the trades and mart recipes: `beta`, the older `tradesBeta`, or the recipe's published default. */
export function betaOf(c: Pick<TrainingConfig, 'method' | 'tradesBeta' | 'beta'>): number {
  const m = recipeOf(c);
  return c.beta ?? c.tradesBeta ?? RECIPE_DEFAULTS[m].beta ?? 0;
}

/** The attack's step as a fraction of ε: `attack.stepFraction`, or the recipe's published default. */
export function stepFractionOf(c: Pick<TrainingConfig, 'method' | 'tradesBeta' | 'attack'>): number {
  return c.attack.stepFraction ?? RECIPE_DEFAULTS[recipeOf(c)].stepFraction;
}

/** True when the config asks for adversarial (or TRADES) training rather than clean training. */
export function isAdversarial(c: TrainingConfig): boolean {
  return c.epsilon !== undefined && c.epsilon.max > 0;
}

/** A stable hash of a parsed config: sha256 of its canonical JSON (sorted keys), first 16 hex digits. */
export function configHash(c: TrainingConfig): string {
  return createHash('sha256').update(canonicalJson(c)).digest('hex').slice(0, 16);
}

export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}
