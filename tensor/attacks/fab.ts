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
 * within ε. The first restart starts at the clean image, later ones at a random point at distance ε/2 (the
 * reference's min(best distance, ε)/2, where a run starts with no best distance). Only images the model classifies
 * correctly are attacked.
 *
 * An image comes back adversarial only when the closest example found lies within ε; otherwise it comes back
 * clean. Each iteration is batched over the images being attacked: one forward and backward pass for the
 * linearisation and one forward pass to classify the new iterate, each read once. The projections and the step run
 * on flat arrays: a sort and one pass per row. (The same projection in tensor ops took ~1 s per iteration for 200
 * images on the wasm backend, mostly broadcasting gathers and tiles; in arrays it takes a few milliseconds.)
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

/** ‖v‖ in the threat model's norm. */
function normOf(v: ArrayLike<number>, norm: Norm): number {
  let acc = 0;
  for (let i = 0; i < v.length; i++) acc = norm === 'linf' ? Math.max(acc, Math.abs(v[i])) : acc + v[i] * v[i];
  return norm === 'linf' ? acc : Math.sqrt(acc);
}

/** Scratch arrays of one row's projection, reused across rows and iterations. */
class Projector {
  private readonly sign: Float64Array;
  private readonly room: Float64Array;
  private readonly kink: Float64Array;
  private readonly slope: Float64Array;
  private readonly sorted: Float64Array;

  constructor(private readonly d: number) {
    this.sign = new Float64Array(d);
    this.room = new Float64Array(d);
    this.kink = new Float64Array(d);
    this.slope = new Float64Array(d);
    this.sorted = new Float64Array(d);
  }

  /** Progress Σ|w_i|·|d_i| of the step with multiplier λ. */
  private progress(lambda: number): number {
    const { d, kink, slope } = this;
    let g = 0;
    for (let i = 0; i < d; i++) g += kink[i] <= lambda ? kink[i] * slope[i] : lambda * slope[i];
    return g;
  }

  /**
   * The smallest step `out` (in `norm`) that takes p onto the hyperplane w·(p + out) = b while keeping p + out inside
   * [0,1]; where the box does not reach the hyperplane, the box corner closest to it.
   *
   * With c = b − w·p every coordinate moves in the direction s_i = sign(c·w_i) and has room u_i before the box stops
   * it. For a multiplier λ the step is d_i = s_i·min(λ, u_i) under L∞ and s_i·min(λ|w_i|, u_i) under L2, so the
   * progress G(λ) = Σ|w_i|·|d_i| is piecewise linear and non-decreasing, with a kink κ_i where coordinate i
   * saturates (u_i, or u_i/|w_i|) and slope |w_i| (or w_i²) before it. A binary search over the sorted kinks finds
   * the segment where G reaches |c|; on it the saturated set is fixed and λ follows in closed form.
   */
  project(p: ArrayLike<number>, w: ArrayLike<number>, b: number, norm: Norm, out: Float64Array): void {
    const { d, sign, room, kink, slope, sorted } = this;
    let dot = 0;
    for (let i = 0; i < d; i++) dot += w[i] * p[i];
    const c = b - dot;
    const need = Math.abs(c);
    for (let i = 0; i < d; i++) {
      const s = Math.sign(c) * Math.sign(w[i]);
      const aw = Math.abs(w[i]);
      sign[i] = s;
      room[i] = s > 0 ? 1 - p[i] : s < 0 ? p[i] : 0;
      // Coordinates that cannot move count as saturated from the start (κ = 0, no slope).
      kink[i] = s === 0 ? 0 : norm === 'linf' ? room[i] : room[i] / aw;
      slope[i] = s === 0 ? 0 : norm === 'linf' ? aw : aw * aw;
    }
    let lambda: number;
    if (need === 0) {
      lambda = 0;
    } else {
      sorted.set(kink);
      sorted.sort();
      if (this.progress(sorted[d - 1]) < need) {
        lambda = Infinity;
      } else {
        let lo = 0;
        let hi = d - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.progress(sorted[mid]) >= need) hi = mid;
          else lo = mid + 1;
        }
        const below = lo > 0 ? sorted[lo - 1] : -1;
        let saturated = 0;
        let rest = 0;
        for (let i = 0; i < d; i++) {
          if (kink[i] <= below) saturated += kink[i] * slope[i];
          else rest += slope[i];
        }
        lambda = rest > 0 ? Math.max((need - saturated) / rest, 0) : Infinity;
      }
    }
    for (let i = 0; i < d; i++) {
      const reach = norm === 'linf' ? lambda : lambda * Math.abs(w[i]);
      out[i] = sign[i] === 0 ? 0 : sign[i] * Math.min(reach, room[i]);
    }
  }
}

/**
 * Row by row, the smallest step in `norm` from `points` (rows × features) onto the hyperplane w·x = b inside the box
 * [0,1] (see `Projector.project`). Returns the steps, rows × features.
 */
export function projectOnHyperplane(
  points: Float32Array,
  w: Float32Array,
  b: ArrayLike<number>,
  rows: number,
  norm: Norm,
): Float64Array {
  const d = points.length / rows;
  if (!Number.isInteger(d) || w.length !== points.length || b.length !== rows) {
    throw new Error(
      `projectOnHyperplane: ${points.length} point values, ${w.length} weights, ${b.length} offsets for ${rows} rows`,
    );
  }
  const projector = new Projector(d);
  const out = new Float64Array(points.length);
  for (let r = 0; r < rows; r++) {
    projector.project(
      points.subarray(r * d, (r + 1) * d),
      w.subarray(r * d, (r + 1) * d),
      b[r],
      norm,
      out.subarray(r * d, (r + 1) * d),
    );
  }
  return out;
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
  const [ranked, correct] = await Promise.all([rankedT.data(), correctT.data()]);
  tf.dispose([rankedT, correctT]);
  const robust = Uint8Array.from(correct as Uint8Array);
  const x = (await ctx.x.data()) as Float32Array;
  const y = (await ctx.y.data()) as Int32Array;
  const adv = Float32Array.from(x);
  const rng = Rng.fromSeed(ctx.seed);
  for (let t = 1; t <= targets; t++) {
    for (let r = 0; r < opts.restarts; r++) {
      const rows: number[] = [];
      for (let i = 0; i < n; i++) if (robust[i]) rows.push(i);
      if (rows.length === 0) return tf.tensor4d(adv, [n, h, w, ch]);
      const run: Run = {
        x0: new Float32Array(rows.length * d),
        y: Int32Array.from(rows, (i) => y[i]),
        target: Int32Array.from(rows, (i) => ranked[i * (targets + 1) + t]),
      };
      rows.forEach((i, j) => run.x0.set(x.subarray(i * d, (i + 1) * d), j * d));
      const runs = targets * opts.restarts;
      const before = (t - 1) * opts.restarts + r;
      const found = await single(ctx, run, opts.iterations, r > 0 ? Rng.fromSeed(rng.seed()) : undefined, (it) =>
        ctx.onProgress?.((before + it / opts.iterations) / runs),
      );
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

/** The images of one run (packed), their labels and their target classes. */
interface Run {
  x0: Float32Array;
  y: Int32Array;
  target: Int32Array;
}

/** A standard normal draw (Box–Muller) from `rng`. */
function gaussian(rng: Rng): number {
  const u = 1 - rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/**
 * One FAB-T run towards each row's target: the closest misclassified iterate per row (packed, clean where none was
 * found) and its distance (FAR where none was found). With `rng` it starts at a random point of half the ε-ball.
 */
async function single(
  ctx: SuiteAttackContext,
  run: Run,
  iterations: number,
  rng: Rng | undefined,
  report: (iteration: number) => void | Promise<void> = () => {},
): Promise<{ images: Float32Array; distance: Float64Array }> {
  const { norm, eps } = ctx;
  const { x0, y, target } = run;
  const m = y.length;
  const [, h, w, ch] = ctx.x.shape;
  const d = h * w * ch;
  const k = ctx.numClasses;
  const shape: [number, number, number, number] = [m, h, w, ch];
  const x1 = Float32Array.from(x0);
  if (rng) {
    const u = new Float64Array(d);
    for (let j = 0; j < m; j++) {
      for (let i = 0; i < d; i++) u[i] = norm === 'linf' ? 2 * rng.next() - 1 : gaussian(rng);
      const scale = (0.5 * eps) / Math.max(normOf(u, norm), 1e-12);
      for (let i = 0; i < d; i++) x1[j * d + i] = clip01(x0[j * d + i] + u[i] * scale);
    }
  }
  const best = Float32Array.from(x0);
  const distance = new Float64Array(m).fill(FAR);
  const moved = new Float32Array(m * d);
  const bOffsets = new Float64Array(m);
  const d1 = new Float64Array(d);
  const d2 = new Float64Array(d);
  const diff = new Float64Array(d);
  const projector = new Projector(d);
  // d(z_t − z_y)/dx for every row at once: the logits' gradient against this upstream direction.
  const dir = tf.tidy(() =>
    tf.sub(tf.oneHot(tf.tensor1d(target, 'int32'), k), tf.oneHot(tf.tensor1d(y, 'int32'), k)).toFloat(),
  );
  const linearise = tf.valueAndGrad((images: tf.Tensor4D) => ctx.logits(images));
  try {
    for (let it = 0; it < iterations; it++) {
      if (ctx.signal?.aborted) throw ctx.signal.reason ?? new Error('fab attack aborted');
      await report(it);
      const { value, grad } = tf.tidy(() => linearise(tf.tensor4d(x1, shape), dir as tf.Tensor2D));
      let z: Float32Array;
      let g: Float32Array;
      try {
        [z, g] = (await Promise.all([value.data(), grad.data()])) as [Float32Array, Float32Array];
      } finally {
        tf.dispose([value, grad]);
      }
      for (let j = 0; j < m; j++) {
        // The linearisation f + g·(x − x₁) of f = z_t − z_y vanishes on g·x = g·x₁ − f.
        const f = z[j * k + target[j]] - z[j * k + y[j]];
        const gj = g.subarray(j * d, (j + 1) * d);
        const x1j = x1.subarray(j * d, (j + 1) * d);
        const x0j = x0.subarray(j * d, (j + 1) * d);
        let dot = 0;
        for (let i = 0; i < d; i++) dot += gj[i] * x1j[i];
        bOffsets[j] = dot - f;
        projector.project(x1j, gj, bOffsets[j], norm, d1);
        projector.project(x0j, gj, bOffsets[j], norm, d2);
        const a1 = Math.max(normOf(d1, norm), 1e-8);
        const a2 = Math.max(normOf(d2, norm), 1e-8);
        const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), ALPHA_MAX);
        for (let i = 0; i < d; i++) {
          moved[j * d + i] = clip01((x1j[i] + ETA * d1[i]) * (1 - alpha) + (x0j[i] + ETA * d2[i]) * alpha);
        }
      }
      const zt = tf.tidy(() => ctx.logits(tf.tensor4d(moved, shape)));
      let zNew: Float32Array;
      try {
        zNew = (await zt.data()) as Float32Array;
      } finally {
        zt.dispose();
      }
      for (let j = 0; j < m; j++) {
        let argmax = 0;
        for (let c = 1; c < k; c++) if (zNew[j * k + c] > zNew[j * k + argmax]) argmax = c;
        const o = j * d;
        if (argmax === y[j]) {
          x1.set(moved.subarray(o, o + d), o);
          continue;
        }
        for (let i = 0; i < d; i++) diff[i] = moved[o + i] - x0[o + i];
        const dist = normOf(diff, norm);
        if (dist < distance[j]) {
          distance[j] = dist;
          best.set(moved.subarray(o, o + d), o);
        }
        // Misclassified: pull back towards the clean image to look for a closer example.
        for (let i = 0; i < d; i++) x1[o + i] = x0[o + i] + BETA * diff[i];
      }
    }
    return { images: best, distance };
  } finally {
    dir.dispose();
  }
}

const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
