import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * How ε grows over training. `progress` is measured in fractional epochs at the start of a batch
 * (epoch + batch / batchesPerEpoch).
 * - constant: ε_max from the first batch;
 * - linear: min(ε_max · progress / warmupEpochs, ε_max);
 * - cosine: ε_max · (1 − cos(π · min(progress / warmupEpochs, 1))) / 2;
 * - steps: the ε of the last `steps` entry whose atEpoch ≤ progress (0 before the first one).
 */
export const EpsilonSchedule = z
  .strictObject({
    max: z.number().min(0).meta({ description: 'the largest ε, in pixel units (images are in [0,1])' }),
    schedule: z.enum(['constant', 'linear', 'cosine', 'steps']).default('constant'),
    warmupEpochs: z.number().min(0).default(0).meta({ description: 'fractional epochs of the linear/cosine ramp' }),
    steps: z
      .array(z.strictObject({ atEpoch: z.number().min(0), eps: z.number().min(0) }))
      .optional()
      .meta({ description: 'for schedule "steps": ε from atEpoch on, in ascending atEpoch order' }),
  })
  .superRefine((s, ctx) => {
    if (s.schedule === 'steps') {
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
      ctx.addIssue({ code: 'custom', message: `steps is only used by schedule "steps", not "${s.schedule}"` });
    }
  });
export type EpsilonSchedule = z.infer<typeof EpsilonSchedule>;

/**
 * The learning-rate schedule, applied to the base `learningRate` at every optimizer step.
 * - warmupEpochs > 0: linear ramp from 0 to the base rate over that many epochs (the first step already gets
 *   base · (1/batchesPerEpoch) / warmupEpochs), then
 * - constant: the base rate; step: base · gamma^floor(progress / stepEvery); cosine: from the base rate down to
 *   minLearningRate at the end of training, over the epochs after the warm-up.
 */
export const LrSchedule = z
  .strictObject({
    type: z.enum(['constant', 'step', 'cosine']).default('constant'),
    warmupEpochs: z.number().min(0).default(0),
    stepEvery: z.number().positive().optional().meta({ description: 'type "step": epochs between decays' }),
    gamma: z.number().positive().max(1).default(0.1).meta({ description: 'type "step": factor per decay' }),
    minLearningRate: z.number().min(0).default(0).meta({ description: 'type "cosine": the floor' }),
  })
  .superRefine((s, ctx) => {
    if (s.type === 'step' && s.stepEvery === undefined) {
      ctx.addIssue({ code: 'custom', message: 'lrSchedule type "step" needs stepEvery (epochs)', path: ['stepEvery'] });
    }
  });
export type LrSchedule = z.infer<typeof LrSchedule>;

/** The inner maximisation used to craft training examples. */
export const TrainingAttack = z.strictObject({
  norm: z.enum(['linf', 'l2']).default('linf'),
  steps: z.int().min(1).max(1000).default(7),
  stepSizeFraction: z.number().positive().default(0.25).meta({ description: 'PGD step size as a fraction of ε' }),
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
    tradesBeta: z
      .number()
      .positive()
      .optional()
      .meta({
        description:
          'when set: TRADES loss CE(clean) + β·KL(p_clean ‖ p_adv); the inner attack maximises the KL from ' +
          'x + 0.001·N(0,1) (one start: attack.restarts and attack.randomStart do not apply)',
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
  });
export type TrainingConfig = z.infer<typeof TrainingConfig>;
export type TrainingConfigInput = z.input<typeof TrainingConfig>;

/** Parses a training config, filling defaults; throws an Error listing every problem. */
export function parseTrainingConfig(input: unknown): TrainingConfig {
  const r = TrainingConfig.safeParse(input);
  if (!r.success) throw new Error(`invalid training config:\n${z.prettifyError(r.error)}`);
  return r.data;
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
