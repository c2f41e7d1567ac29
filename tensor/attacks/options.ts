/** The threat model: L∞ (per-pixel box) or L2 (Euclidean ball per image). */
export type Norm = 'linf' | 'l2';

/** How the perturbation is found. FGSM is one step of size ε from the clean image. */
export type AttackMethod = 'pgd' | 'fgsm';

/**
 * Options common to every attack. All distances are in pixel units of images in [0,1].
 * Untargeted: each attack maximises the cross-entropy of the true (or given) label.
 */
export interface AttackOptions {
  /** 'pgd' (default) or 'fgsm'. */
  method?: AttackMethod;
  norm: Norm;
  /** Radius of the ball around each clean image (≥ 0). */
  eps: number;
  /** Absolute step size (not a fraction of ε). Default: PGD 2.5·ε/steps (Madry et al.), FGSM ε. */
  stepSize?: number;
  /** Gradient steps per restart. Default: PGD 10, FGSM 1 (FGSM always takes exactly one). */
  steps?: number;
  /**
   * Independent runs from different random starts (default 1). Per example the result of the first restart that
   * misclassifies it is kept; an example that no restart fools keeps the last restart's result. Stops early once
   * every example is fooled.
   */
  restarts?: number;
  /** Start uniformly inside the ε-ball (L∞: uniform box; L2: uniform in the ball). Default: PGD true, FGSM false. */
  randomStart?: boolean;
  /**
   * Seed of the random starts (default 0), so a retried activity repeats exactly. Derive one per batch
   * (e.g. from `Rng`) or every batch gets the same noise pattern.
   */
  seed?: number;
}

/** Options with every default filled in. */
export interface ResolvedAttack {
  method: AttackMethod;
  norm: Norm;
  eps: number;
  stepSize: number;
  steps: number;
  restarts: number;
  randomStart: boolean;
  seed: number;
}

/** Fills in defaults and checks ranges; throws an `Error` naming the field, the value and what was expected. */
export function resolveAttack(options: AttackOptions): ResolvedAttack {
  const method = options.method ?? 'pgd';
  if (method !== 'pgd' && method !== 'fgsm') throw new Error(`attack method must be 'pgd' or 'fgsm', got '${method}'`);
  const { norm, eps } = options;
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`attack norm must be 'linf' or 'l2', got '${norm}'`);
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new Error(`attack eps must be a finite number ≥ 0, got ${eps}`);
  }
  const fgsm = method === 'fgsm';
  const steps = fgsm ? 1 : (options.steps ?? 10);
  if (!Number.isInteger(steps) || steps < 0) throw new Error(`attack steps must be an integer ≥ 0, got ${steps}`);
  if (fgsm && options.steps !== undefined && options.steps !== 1) {
    throw new Error(`FGSM takes exactly 1 step, got steps=${options.steps}`);
  }
  const stepSize = options.stepSize ?? (fgsm ? eps : (2.5 * eps) / Math.max(steps, 1));
  if (!Number.isFinite(stepSize) || stepSize < 0) {
    throw new Error(`attack stepSize must be a finite number ≥ 0, got ${stepSize}`);
  }
  const restarts = options.restarts ?? 1;
  if (!Number.isInteger(restarts) || restarts < 1) {
    throw new Error(`attack restarts must be an integer ≥ 1, got ${restarts}`);
  }
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new Error(`attack seed must be an integer, got ${seed}`);
  const randomStart = options.randomStart ?? !fgsm;
  return { method, norm, eps, stepSize, steps, restarts, randomStart, seed };
}
