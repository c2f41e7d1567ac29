/**
 * The one place where the spec's vocabulary becomes the tensor core's. Every spec leaf that reaches the core (or
 * an activity) goes through here; `test/unit/activities/spec-to-core.test.ts` changes each leaf of a full spec and
 * fails when one arrives nowhere.
 *
 * The words that differ between the layers, and why:
 * - ε schedule: `kind` in both layers; the spec counts epochs as people do (`steps[].epoch`, 1-based, whole
 *   epochs; `value`), the core counts progress in fractional epochs from 0 (`steps[].atEpoch`; `eps`): epoch n of
 *   the spec is atEpoch n − 1. Different words because they are different numbers.
 * - step sizes: `stepFraction` is a fraction of ε in both layers (the spec's older `stepSize` is read as it, with
 *   a warning); the core's attacks take an absolute `stepSize` = stepFraction · ε, computed here (evaluation) or
 *   per batch by the trainer (training, where ε moves).
 */
import type { ResolvedEvalAttack, Spec, TrainBaselineSource } from '../schemas/spec';
import type { EpsCurveSpec, EvalAttack } from '../tensor/eval';
import type { TrainingConfigInput } from '../tensor/training';

/** The core's training config of the adversarial training phase. */
export function trainingConfig(spec: Pick<Spec, 'training' | 'epsilon' | 'attack'>): TrainingConfigInput {
  const { training: t, epsilon: e, attack: a } = spec;
  return {
    epochs: t.epochs,
    batchSize: t.batchSize,
    optimizer: t.optimizer,
    ...(t.optimizer === 'sgd' ? { momentum: t.momentum } : {}),
    learningRate: t.learningRate,
    lrSchedule: { type: t.lrSchedule },
    epsilon: {
      max: e.max,
      kind: e.kind === 'linear' || e.kind === 'cosine' ? (e.warmupEpochs > 0 ? e.kind : 'constant') : e.kind,
      warmupEpochs: e.kind === 'linear' || e.kind === 'cosine' ? e.warmupEpochs : 0,
      ...(e.kind === 'steps' ? { steps: (e.steps ?? []).map((s) => ({ atEpoch: s.epoch - 1, eps: s.value })) } : {}),
    },
    attack: {
      norm: a.norm,
      steps: a.steps,
      ...(a.stepFraction !== undefined ? { stepFraction: a.stepFraction } : {}),
      restarts: a.restarts,
      randomStart: a.randomStart,
    },
    ...(t.method !== undefined ? { method: t.method } : {}),
    ...(t.beta !== undefined ? { beta: t.beta } : {}),
    ...(t.tradesBeta !== undefined ? { tradesBeta: t.tradesBeta } : {}),
    // absent rather than 0, so configs without weight decay keep the hash they had before it existed
    ...(t.weightDecay > 0 ? { weightDecay: t.weightDecay } : {}),
    labelSmoothing: t.labelSmoothing,
    gradientAccumulation: t.gradientAccumulation,
    cleanFraction: t.cleanFraction,
    seed: t.seed,
    ...(t.probe.images > 0
      ? {
          guard: {
            probeImages: t.probe.images,
            steps: t.probe.steps,
            maxDrop: t.probe.maxDrop,
            keepBest: t.keepBest,
          },
        }
      : {}),
    divergence: { maxLoss: t.maxLoss },
  };
}

/** The core's training config of a baseline trained on clean data (`model.source: train-baseline`). */
export function baselineConfig(budget: TrainBaselineSource): TrainingConfigInput {
  return {
    epochs: budget.epochs,
    batchSize: budget.batchSize,
    optimizer: 'adam',
    learningRate: budget.learningRate,
    seed: budget.seed,
  };
}

/** An evaluation attack of the spec (step as a fraction of ε) as the core takes it (absolute step size). */
export function evalAttack(a: ResolvedEvalAttack): EvalAttack {
  const eps = a.eps;
  return {
    name: a.name,
    method: 'pgd',
    norm: a.norm,
    eps,
    steps: a.steps,
    restarts: a.restarts,
    stepSize: a.stepFraction * eps,
    randomStart: a.randomStart,
  };
}

/** The ε curve of an evaluation: the first iterative spec attack (or the first) swept over `evaluation.epsCurve`. */
export function epsCurve(spec: Pick<Spec, 'evaluation'>): EpsCurveSpec {
  const a = curveAttack(spec);
  return {
    norm: a.norm,
    steps: a.steps,
    restarts: 1,
    stepFraction: a.stepFraction,
    epsilons: spec.evaluation.epsCurve,
  };
}

/** The spec attack the ε curve follows and the gate falls back to. */
export function curveAttack(spec: Pick<Spec, 'evaluation'>): ResolvedEvalAttack {
  return spec.evaluation.attacks.find((a) => a.steps > 1) ?? spec.evaluation.attacks[0];
}
