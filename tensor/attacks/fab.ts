/**
 * FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020) of AutoAttack's standard suite.
 *
 * FAB looks for the adversarial example closest to the clean image. For a target class t it linearises the
 * decision function f = z_t − z_y at the current iterate x₁ and projects both x₁ and the clean image x₀ onto the
 * hyperplane where the linearisation vanishes, each inside the box [0,1] with the smallest step in the threat
 * model's norm (d₁ and d₂). The next iterate mixes the two, leaning towards the clean image by
 * α = min(‖d₁‖/(‖d₁‖ + ‖d₂‖), α_max):
 *
 *   x₁ ← clip((1 − α)(x₁ + η·d₁) + α(x₀ + η·d₂), 0, 1),   η = 1.05 (overshoot), α_max = 0.1.
 *
 * Whenever the iterate is misclassified it is kept if closer than the best so far, and pulled back towards the
 * clean image, x₁ ← x₀ + β(x₁ − x₀) with β = 0.9, to look for a closer one. The targets are the 2nd..(targets+1)th
 * highest clean logits, one after the other, each only on the images no earlier target (or restart) has broken
 * within ε. The first restart starts at the clean image, later ones at a random point of half the ball (half the
 * best distance found so far when that is smaller). Only images the model classifies correctly are attacked.
 *
 * An image comes back adversarial only when the closest example found lies within ε; otherwise it comes back
 * clean. Each iteration is batched over the images being attacked: one forward and backward pass for the
 * linearisation, one forward pass to classify the new iterate, and the box projection as sorted prefix sums.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random';
import type { SuiteAttackContext, SuiteAttackFn } from './contract';
import type { Norm } from './options';

export interface FabOptions {
  /** Iterations per target and restart (default 100, AutoAttack's budget). */
  iterations?: number;
  /** Target classes: the 2nd..(targets+1)th highest clean logits (default 9); at most the other classes. */
  targets?: number;
  /** Runs per target; the first from the clean image, the others from random starts (default 1). */
  restarts?: number;
}

export interface ResolvedFab {
  iterations: number;
  targets: number;
  restarts: number;
}

/** The reference's step constants: overshoot η, largest pull towards the clean image α_max, backtrack β. */
const ETA = 1.05;
const ALPHA_MAX = 0.1;
const BETA = 0.9;
/** Stand-in for "no adversarial example found yet" (the reference's 1e10). */
const FAR = 1e10;

/** Fills in defaults and checks ranges once; throws an `Error` naming the field, the value and what was expected. */
export function resolveFab(options: FabOptions = {}): ResolvedFab {
  const out: ResolvedFab = {
    iterations: options.iterations ?? 100,
    targets: options.targets ?? 9,
    restarts: options.restarts ?? 1,
  };
  for (const [field, value] of Object.entries(out)) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`fab ${field} must be an integer ≥ 1, got ${value}`);
  }
  return out;
}

/** FAB-T as a suite attack; options are checked here, once. */
export function fabTargeted(options: FabOptions = {}): SuiteAttackFn {
  const opts = resolveFab(options);
  return (ctx) => fab(ctx, opts);
}

function checkContext(ctx: SuiteAttackContext): void {
  const { x, y } = ctx;
  if (x.rank !== 4 || x.dtype !== 'float32') {
    throw new Error(`fab attack expects float32 images [batch,height,width,channels], got ${x.dtype} [${x.shape}]`);
  }
  if (y.rank !== 1 || y.shape[0] !== x.shape[0] || y.dtype !== 'int32') {
    throw new Error(`fab attack expects int32 labels [${x.shape[0]}], got ${y.dtype} [${y.shape}]`);
  }
  if (ctx.norm !== 'linf' && ctx.norm !== 'l2')
    throw new Error(`fab attack norm must be 'linf' or 'l2', got '${ctx.norm}'`);
  if (!Number.isFinite(ctx.eps) || ctx.eps < 0)
    throw new Error(`fab attack eps must be a finite number ≥ 0, got ${ctx.eps}`);
  if (!Number.isInteger(ctx.numClasses) || ctx.numClasses < 2) {
    throw new Error(`fab attack numClasses must be an integer ≥ 2, got ${ctx.numClasses}`);
  }
}

/** Per-row norm of a [rows, features] tensor, shape [rows, 1]. */
function rowNorm(t: tf.Tensor2D, norm: Norm): tf.Tensor2D {
  return norm === 'linf' ? tf.max(tf.abs(t), 1, true) : tf.sqrt(tf.sum(tf.square(t), 1, true));
}

/**
 * out[r][j] = t[r][idx[r][j]]. Written with flat offsets: tfjs' gather with batchDims returns wrong rows on the wasm
 * backend (4.22).
 */
function takeAlongRows(t: tf.Tensor2D, idx: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [rows, cols] = t.shape;
    const offsets = tf.reshape(tf.range(0, rows * cols, cols, 'int32'), [-1, 1]);
    return tf.reshape(tf.gather(tf.reshape(t, [-1]), tf.add(idx, offsets)), idx.shape) as tf.Tensor2D;
  });
}

/**
 * The smallest step d (in `norm`) that takes each row p of `points` onto its hyperplane w·(p + d) = b while keeping
 * p + d inside [0,1]; where the box does not reach the hyperplane, the box corner closest to it. Batched: rows are
 * independent.
 *
 * With c = b − w·p, every coordinate moves in the direction s_i = sign(c·w_i) and has room u_i before the box
 * stops it. For a multiplier λ the step is d_i = s_i·min(λ, u_i) under L∞ and s_i·min(λ|w_i|, u_i) under L2, so
 * its progress G(λ) = Σ|w_i|·|d_i| is piecewise linear and non-decreasing, with a kink where coordinate i
 * saturates (λ = u_i, or u_i/|w_i|). Sorting the kinks and taking prefix sums gives G at every kink; the segment
 * where G crosses |c| gives λ in closed form.
 */
export function projectOnHyperplane(points: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, norm: Norm): tf.Tensor2D {
  return tf.tidy(() => {
    const d = points.shape[1];
    const c = tf.sub(b, tf.sum(tf.mul(w, points), 1)).reshape([-1, 1]);
    const s = tf.mul(tf.sign(c), tf.sign(w));
    const room = tf.where(tf.greater(s, 0), tf.sub(1, points), tf.where(tf.less(s, 0), points, tf.zerosLike(points)));
    const aw = tf.abs(w);
    const moving = tf.greater(aw, 0);
    const kink =
      norm === 'linf'
        ? room
        : tf.where(moving, tf.div(room, tf.where(moving, aw, tf.onesLike(aw))), tf.fill(aw.shape, FAR));
    const slope = norm === 'linf' ? aw : tf.square(w);
    const saturated = tf.mul(aw, room);
    const { values, indices } = tf.topk(tf.neg(kink), d);
    const kinks = tf.neg(values);
    const slopeSorted = takeAlongRows(slope, indices);
    const before = tf.cumsum(takeAlongRows(saturated, indices), 1, true);
    const slopeBefore = tf.cumsum(slopeSorted, 1, true);
    const slopeTotal = tf.sum(slope, 1, true);
    const progress = tf.add(before, tf.mul(kinks, tf.sub(slopeTotal, slopeBefore)));
    const needed = tf.abs(c);
    const k = tf.sum(tf.cast(tf.less(progress, needed), 'int32'), 1);
    const at: tf.Tensor2D = tf.reshape(tf.minimum(k, tf.scalar(d - 1, 'int32')), [-1, 1]);
    const rest = tf.sub(slopeTotal, takeAlongRows(slopeBefore, at));
    const exact = tf.div(tf.sub(needed, takeAlongRows(before, at)), tf.maximum(rest, 1e-12));
    const lambda = tf.where(tf.equal(k, d).reshape([-1, 1]), tf.fill(exact.shape, FAR), tf.relu(exact));
    const reach = norm === 'linf' ? tf.broadcastTo(lambda, room.shape) : tf.mul(lambda, aw);
    return tf.mul(s, tf.minimum(reach, room)) as tf.Tensor2D;
  });
}

/** Runs every target and restart on the images still robust; returns the adversarial batch as a new tensor. */
async function fab(ctx: SuiteAttackContext, opts: ResolvedFab): Promise<tf.Tensor4D> {
  checkContext(ctx);
  const [n, h, w, ch] = ctx.x.shape;
  const d = h * w * ch;
  const k = ctx.numClasses;
  if (n === 0 || ctx.eps === 0) return tf.clone(ctx.x);
  const targets = Math.min(opts.targets, k - 1);
  const [rankedT, correctT] = tf.tidy(() => {
    const z = ctx.logits(ctx.x);
    if (z.shape[1] !== k) throw new Error(`fab attack: the model gives ${z.shape[1]} logits, numClasses is ${k}`);
    return [tf.topk(z, targets + 1).indices, tf.equal(tf.argMax(z, 1), ctx.y)];
  });
  const ranked = (await rankedT.data()) as Int32Array;
  const robust = Uint8Array.from((await correctT.data()) as Uint8Array);
  tf.dispose([rankedT, correctT]);
  const adv = Float32Array.from((await ctx.x.data()) as Float32Array);
  const rng = Rng.fromSeed(ctx.seed);
  for (let t = 1; t <= targets; t++) {
    for (let r = 0; r < opts.restarts; r++) {
      const rows: number[] = [];
      for (let i = 0; i < n; i++) if (robust[i]) rows.push(i);
      if (rows.length === 0) return tf.tensor4d(adv, [n, h, w, ch]);
      const target = Int32Array.from(rows, (i) => ranked[i * (targets + 1) + t]);
      const seed = r > 0 ? rng.seed() : undefined;
      const found = await single(ctx, Int32Array.from(rows), target, opts.iterations, seed);
      for (let j = 0; j < rows.length; j++) {
        if (found.distance[j] <= ctx.eps) {
          adv.set(found.images.subarray(j * d, (j + 1) * d), rows[j] * d);
          robust[rows[j]] = 0;
        }
      }
    }
  }
  return tf.tensor4d(adv, [n, h, w, ch]);
}

/**
 * One FAB-T run towards `target` on the batch rows `rows`: the closest misclassified iterate per row (packed, clean
 * where none was found) and its distance (FAR where none was found).
 */
async function single(
  ctx: SuiteAttackContext,
  rows: Int32Array,
  target: Int32Array,
  iterations: number,
  seed: number | undefined,
): Promise<{ images: Float32Array; distance: Float32Array }> {
  const { norm, eps } = ctx;
  const m = rows.length;
  const [, h, w, ch] = ctx.x.shape;
  const d = h * w * ch;
  const shape: [number, number, number, number] = [m, h, w, ch];
  const k = ctx.numClasses;
  const state: tf.Tensor[] = [];
  try {
    const idx = tf.tensor1d(rows, 'int32');
    state.push(idx);
    const x0 = tf.tidy(() => tf.reshape(tf.gather(ctx.x, idx), [m, d]) as tf.Tensor2D);
    const y = tf.gather(ctx.y, idx) as tf.Tensor1D;
    // d(z_t − z_y)/dx for every row at once: the logits' gradient against this upstream direction.
    const dir = tf.tidy(
      () => tf.sub(tf.oneHot(tf.tensor1d(target, 'int32'), k), tf.oneHot(y, k)).toFloat() as tf.Tensor2D,
    );
    state.push(x0, y, dir);
    const linearise = tf.valueAndGrad((images: tf.Tensor4D) => ctx.logits(images));
    let x1: tf.Tensor2D =
      seed === undefined
        ? tf.clone(x0)
        : tf.tidy(() => {
            // Random start in half the ball (no best distance yet, so half of ε).
            const u =
              norm === 'linf'
                ? tf.randomUniform([m, d], -1, 1, 'float32', seed)
                : tf.randomNormal([m, d], 0, 1, 'float32', seed);
            return tf.clipByValue(tf.add(x0, tf.mul(tf.div(u, rowNorm(u, norm)), 0.5 * eps)), 0, 1) as tf.Tensor2D;
          });
    let best: tf.Tensor2D = tf.clone(x0);
    let res: tf.Tensor2D = tf.fill([m, 1], FAR) as tf.Tensor2D;
    try {
      for (let it = 0; it < iterations; it++) {
        if (ctx.signal?.aborted) throw ctx.signal.reason ?? new Error('fab attack aborted');
        const [nextX, nextBest, nextRes] = tf.tidy(() => {
          const { value, grad } = linearise(tf.reshape(x1, shape) as tf.Tensor4D, dir);
          const f = tf.sum(tf.mul(value, dir), 1);
          const g = tf.reshape(grad, [m, d]) as tf.Tensor2D;
          // The linearisation f + g·(z − x₁) vanishes on w·z = b with w = g, b = g·x₁ − f.
          const b = tf.sub(tf.sum(tf.mul(g, x1), 1), f) as tf.Tensor1D;
          const steps = projectOnHyperplane(
            tf.concat([x1, x0]),
            tf.concat([g, g]) as tf.Tensor2D,
            tf.concat([b, b]) as tf.Tensor1D,
            norm,
          );
          const lengths = tf.maximum(rowNorm(steps, norm), 1e-8);
          const [a1, a2] = tf.split(lengths, 2);
          const [d1, d2] = tf.split(steps, 2);
          const alpha = tf.clipByValue(tf.div(a1, tf.add(a1, a2)), 0, ALPHA_MAX);
          const moved = tf.clipByValue(
            tf.add(tf.mul(tf.add(x1, tf.mul(d1, ETA)), tf.sub(1, alpha)), tf.mul(tf.add(x0, tf.mul(d2, ETA)), alpha)),
            0,
            1,
          ) as tf.Tensor2D;
          const wrong = tf
            .notEqual(tf.argMax(ctx.logits(tf.reshape(moved, shape) as tf.Tensor4D), 1), y)
            .reshape([-1, 1]);
          const dist = rowNorm(tf.sub(moved, x0), norm);
          const closer = tf.logicalAnd(wrong, tf.less(dist, res));
          return [
            tf.where(wrong, tf.add(x0, tf.mul(tf.sub(moved, x0), BETA)), moved) as tf.Tensor2D,
            tf.where(closer, moved, best) as tf.Tensor2D,
            tf.where(closer, dist, res) as tf.Tensor2D,
          ];
        });
        tf.dispose([x1, best, res]);
        [x1, best, res] = [nextX, nextBest, nextRes];
        await res.data();
      }
      return { images: (await best.data()) as Float32Array, distance: (await res.data()) as Float32Array };
    } finally {
      tf.dispose([x1, best, res]);
    }
  } finally {
    tf.dispose(state);
  }
}
