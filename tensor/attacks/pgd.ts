import * as tf from '@tensorflow/tfjs';
import { logitsFunction } from '../models/logits';
import type { LogitsFn } from '../models/logits';
import { Rng } from '../random';
import { resolveAttack } from './options';
import type { AttackOptions, Norm, ResolvedAttack } from './options';

const TINY = 1e-12;

/** Checks `x` (NHWC float) and `y` (int labels, one per image); throws with the shapes found. */
export function checkBatch(x: tf.Tensor, y: tf.Tensor | undefined): void {
  if (x.rank !== 4) throw new Error(`attack expects images of shape [batch,height,width,channels], got [${x.shape}]`);
  if (x.dtype !== 'float32') throw new Error(`attack expects float32 images in [0,1], got dtype ${x.dtype}`);
  if (y === undefined) return;
  if (y.rank !== 1 || y.shape[0] !== x.shape[0]) {
    throw new Error(`attack expects labels of shape [${x.shape[0]}] for ${x.shape[0]} images, got [${y.shape}]`);
  }
  if (y.dtype !== 'int32') throw new Error(`attack expects int32 class indices as labels, got dtype ${y.dtype}`);
}

/** Per-example L2 norm of an NHWC tensor, shape [batch,1,1,1]. */
function l2PerExample(t: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.sum(tf.square(t), [1, 2, 3], true));
}

/** Random start: uniform in the L∞ box or uniform in the L2 ball, clipped to [0,1]. Tensor owned by the caller. */
function startPoint(x: tf.Tensor4D, norm: Norm, eps: number, seed: number, lo?: tf.Tensor, hi?: tf.Tensor) {
  return tf.tidy(() => {
    if (norm === 'linf') {
      const start = tf.add(x, tf.randomUniform(x.shape, -eps, eps, 'float32', seed));
      return tf.minimum(tf.maximum(start, lo!), hi!) as tf.Tensor4D;
    }
    // Direction uniform on the sphere (normalised Gaussian), radius ε·u^(1/d): uniform in the d-dimensional ball.
    const [b, h, w, c] = x.shape;
    const dir = tf.randomNormal(x.shape, 0, 1, 'float32', seed);
    const u = tf.randomUniform([b, 1, 1, 1], 0, 1, 'float32', seed ^ 0x5bd1e995);
    const radius = tf.mul(tf.pow(u, 1 / (h * w * c)), eps);
    const delta = tf.mul(tf.div(dir, tf.add(l2PerExample(dir), TINY)), radius);
    return tf.clipByValue(tf.add(x, delta), 0, 1) as tf.Tensor4D;
  });
}

/** Everything one attack call computes once and reuses across steps and restarts. */
interface Prepared {
  x: tf.Tensor4D;
  a: ResolvedAttack;
  logits: LogitsFn;
  /** d(sum of per-example cross-entropy)/d(input). */
  grad: (adv: tf.Tensor4D) => tf.Tensor4D;
  /** L∞ only: max(x−ε, 0) and min(x+ε, 1), the intersection of the ε-box with [0,1]. */
  lo?: tf.Tensor4D;
  hi?: tf.Tensor4D;
}

/** One projected step; returns a new tensor, the caller disposes `adv`. */
function step(p: Prepared, adv: tf.Tensor4D): tf.Tensor4D {
  const { a, x } = p;
  return tf.tidy(() => {
    const g = p.grad(adv);
    if (a.norm === 'linf') {
      return tf.minimum(tf.maximum(tf.add(adv, tf.mul(tf.sign(g), a.stepSize)), p.lo!), p.hi!) as tf.Tensor4D;
    }
    const moved = tf.add(adv, tf.mul(tf.div(g, tf.add(l2PerExample(g), TINY)), a.stepSize));
    const delta = tf.sub(moved, x);
    const scale = tf.minimum(tf.div(a.eps, tf.add(l2PerExample(delta), TINY)), 1);
    // Clipping to [0,1] after the projection cannot leave the ball: the clean image lies in [0,1].
    return tf.clipByValue(tf.add(x, tf.mul(delta, scale)), 0, 1) as tf.Tensor4D;
  });
}

/** One restart: start (random or clean), then `steps` projected steps. Returns a tensor the caller owns. */
function run(p: Prepared, seed: number): tf.Tensor4D {
  const { a, x } = p;
  let adv = a.randomStart && a.eps > 0 ? startPoint(x, a.norm, a.eps, seed, p.lo, p.hi) : tf.clone(x);
  for (let i = 0; i < a.steps; i++) {
    const next = step(p, adv);
    adv.dispose();
    adv = next;
  }
  return adv;
}

/**
 * Untargeted attack on a batch: PGD (L∞ or L2, random start, restarts) or FGSM, maximising the cross-entropy of
 * the labels `y` under `model.apply(x, { training: false })` (for a softmax model: the scores before the softmax).
 * When `y` is omitted the model's own predictions on `x` are the labels.
 *
 * Every returned image lies within ε of its clean image (in the chosen norm) and inside [0,1]. Returns a new
 * tensor the caller owns; `x`, `y` and the model are unchanged and nothing else survives the call. Synchronous;
 * with restarts > 1 it reads one boolean per restart to keep the first successful restart per example.
 */
export function attack(
  model: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D | undefined,
  options: AttackOptions,
): tf.Tensor4D {
  const logits = logitsFunction(model);
  return attackLogits(logits, model.outputs[0]?.shape[1] ?? undefined, x, y, options);
}

/**
 * {@link attack} on a forward pass to logits instead of a model (what a suite attack receives). `numClasses` is the
 * logits' width (read from one forward pass when not given). Returns a new tensor the caller owns.
 */
export function attackLogits(
  logits: LogitsFn,
  numClasses: number | undefined,
  x: tf.Tensor4D,
  y: tf.Tensor1D | undefined,
  options: AttackOptions,
): tf.Tensor4D {
  const a = resolveAttack(options);
  checkBatch(x, y);
  const labels = y ?? tf.tidy(() => tf.argMax(logits(x), 1).toInt() as tf.Tensor1D);
  const kept: tf.Tensor[] = y === undefined ? [labels] : [];
  try {
    const classes = numClasses ?? tf.tidy(() => logits(x).shape[1]);
    const onehot = tf.tidy(() => tf.oneHot(labels, classes).toFloat() as tf.Tensor2D);
    kept.push(onehot);
    const loss = (adv: tf.Tensor) => tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits(adv as tf.Tensor4D)))));
    const p: Prepared = { x, a, logits, grad: tf.grad(loss) as (adv: tf.Tensor4D) => tf.Tensor4D };
    if (a.norm === 'linf') {
      const lo = tf.tidy(() => tf.maximum(tf.sub(x, a.eps), 0) as tf.Tensor4D);
      const hi = tf.tidy(() => tf.minimum(tf.add(x, a.eps), 1) as tf.Tensor4D);
      kept.push(lo, hi);
      p.lo = lo;
      p.hi = hi;
    }
    const rng = Rng.fromSeed(a.seed);
    if (a.restarts === 1) return run(p, rng.seed());
    return withRestarts(p, labels, rng);
  } finally {
    for (const t of kept) t.dispose();
  }
}

/** Per example the first restart that fools the model; never-fooled examples keep the last restart's result. */
function withRestarts(p: Prepared, labels: tf.Tensor1D, rng: Rng): tf.Tensor4D {
  let best: tf.Tensor4D | undefined;
  let fooled: tf.Tensor1D | undefined;
  try {
    for (let r = 0; r < p.a.restarts; r++) {
      const adv = run(p, rng.seed());
      const wrong = tf.tidy(() => tf.notEqual(tf.argMax(p.logits(adv), 1), labels) as tf.Tensor1D);
      if (best === undefined || fooled === undefined) {
        best = adv;
        fooled = wrong;
      } else {
        const prevBest: tf.Tensor4D = best;
        const prevFooled: tf.Tensor1D = fooled;
        best = tf.tidy(() => tf.where(tf.reshape(prevFooled, [-1, 1, 1, 1]), prevBest, adv) as tf.Tensor4D);
        fooled = tf.logicalOr(prevFooled, wrong) as tf.Tensor1D;
        for (const t of [prevBest, prevFooled, adv, wrong]) t.dispose();
      }
      if (r < p.a.restarts - 1 && tf.tidy(() => tf.all(fooled!).dataSync()[0]) === 1) break;
    }
    const out = best!;
    best = undefined;
    return out;
  } finally {
    best?.dispose();
    fooled?.dispose();
  }
}

/** L∞ PGD (`method`/`norm` forced). Returns a new tensor the caller owns. See {@link attack}. */
export function pgdLinf(
  model: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D | undefined,
  options: Omit<AttackOptions, 'norm' | 'method'>,
): tf.Tensor4D {
  return attack(model, x, y, { ...options, method: 'pgd', norm: 'linf' });
}

/** L2 PGD: normalised-gradient steps, projection onto the L2 ball, clip to [0,1]. Caller owns the result. */
export function pgdL2(
  model: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D | undefined,
  options: Omit<AttackOptions, 'norm' | 'method'>,
): tf.Tensor4D {
  return attack(model, x, y, { ...options, method: 'pgd', norm: 'l2' });
}

/**
 * FGSM: x + ε·sign(∇) under L∞, x + ε·∇/‖∇‖₂ under L2, clipped to [0,1]. Norm defaults to L∞. With
 * `randomStart: true` it is "FGSM with random start" (Wong et al.), then set `stepSize` (e.g. 1.25·ε).
 * Returns a new tensor the caller owns.
 */
export function fgsm(
  model: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D | undefined,
  options: Omit<AttackOptions, 'norm' | 'method' | 'steps'> & { norm?: Norm },
): tf.Tensor4D {
  return attack(model, x, y, { ...options, norm: options.norm ?? 'linf', method: 'fgsm' });
}
