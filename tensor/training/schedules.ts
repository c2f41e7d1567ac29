import type { EpsilonSchedule, LrSchedule } from './config';

/**
 * ε for a batch that starts at `progress` fractional epochs (epoch + batch / batchesPerEpoch). Pure.
 * See `EpsilonSchedule` for the formulas.
 */
export function epsilonAt(s: EpsilonSchedule, progress: number): number {
  if (!Number.isFinite(progress) || progress < 0) {
    throw new Error(`epsilonAt needs progress ≥ 0 in fractional epochs, got ${progress}`);
  }
  switch (s.kind) {
    case 'constant':
      return s.max;
    case 'linear':
      if (s.warmupEpochs <= 0) return s.max;
      return Math.min((s.max * progress) / s.warmupEpochs, s.max);
    case 'cosine': {
      if (s.warmupEpochs <= 0) return s.max;
      const t = Math.min(progress / s.warmupEpochs, 1);
      return (s.max * (1 - Math.cos(Math.PI * t))) / 2;
    }
    case 'steps': {
      let eps = 0;
      for (const st of s.steps ?? []) if (st.atEpoch <= progress) eps = st.eps;
      return eps;
    }
  }
}

/** The PGD step size for the current ε: `fraction · ε` (e.g. 0.25 for "step ε/4"). */
export function pgdStepSize(eps: number, fraction: number): number {
  if (!(fraction > 0)) throw new Error(`step size fraction must be > 0, got ${fraction}`);
  return eps * fraction;
}

export interface LrAt {
  /** fractional epochs at the start of the batch that triggers the optimizer step */
  progress: number;
  /** total epochs of the run (for cosine) */
  epochs: number;
  /** batches per epoch: the warm-up counts the triggering batch as done, so the first step's rate is not 0 */
  batchesPerEpoch: number;
}

/** The learning rate of an optimizer step. Pure; see `LrSchedule` for the formulas. */
export function learningRateAt(s: LrSchedule, base: number, at: LrAt): number {
  const { progress, epochs, batchesPerEpoch } = at;
  if (!Number.isFinite(progress) || progress < 0) throw new Error(`learningRateAt needs progress ≥ 0, got ${progress}`);
  if (!(batchesPerEpoch >= 1)) throw new Error(`learningRateAt needs batchesPerEpoch ≥ 1, got ${batchesPerEpoch}`);
  const w = s.warmupEpochs;
  const warm = w > 0 ? Math.min(1, (progress + 1 / batchesPerEpoch) / w) : 1;
  let lr: number;
  switch (s.type) {
    case 'constant':
      lr = base;
      break;
    case 'step':
      lr = base * Math.pow(s.gamma, Math.floor(progress / (s.stepEvery ?? Infinity)));
      break;
    case 'cyclic': {
      // one triangle over the run, sampled at the end of the triggering batch (the warm-up factor stays 1 unless set)
      const t = Math.min((progress + 1 / batchesPerEpoch) / epochs, 1);
      const peak = s.cyclicPeak ?? 0.4;
      lr = t <= peak ? (base * t) / peak : (base * (1 - t)) / (1 - peak);
      break;
    }
    case 'cosine': {
      const span = epochs - w;
      const t = span > 0 ? Math.min(Math.max((progress - w) / span, 0), 1) : 0;
      lr = s.minLearningRate + ((base - s.minLearningRate) * (1 + Math.cos(Math.PI * t))) / 2;
      break;
    }
  }
  return lr * warm;
}
