/**
 * Square Attack (Andriushchenko et al. 2020, as in AutoAttack's standard suite): a score-based black-box attack.
 * It never asks for a gradient, so it sees through models whose gradients are masked, zero or useless.
 *
 * Per restart, every image starts from a random corner of the ε-ball (L∞: vertical stripes of ±ε; L2: a grid of
 * pseudo-Gaussian bumps with random signs, scaled to the sphere), then each iteration proposes one random square
 * window per image (L∞: the window set to x ± ε per channel; L2: mass moved from a second window into the first
 * so the perturbation stays on the sphere) and keeps the proposal when it lowers the margin loss
 * z_y − max_{i≠y} z_i. The window side shrinks with the reference's p schedule: p = pInit, halved after queries
 * 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of a 10 000-query run, rescaled to the query budget.
 * Windows, signs and bumps are drawn per image, as in the paper's code (AutoAttack's batched version draws one
 * window per iteration for the whole batch); the distribution each image sees is the same.
 *
 * All images of the batch step together: one forward pass per iteration over the images not yet broken, so an
 * image stops costing queries once it is misclassified (argmax ≠ label, tfjs' first-max rule, as the evaluation
 * counts it). The proposals touch one window per image, so they are built on flat arrays in JavaScript and only
 * the forward pass runs as tensor ops; each iteration awaits exactly one read (the logits of that batch).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random';
import type { SuiteAttackContext, SuiteAttackFn } from './contract';

export interface SquareOptions {
  /** Forward passes per image and restart, the initial one included (default 5000, AutoAttack's budget). */
  queries?: number;
  /** Initial share of the image's pixels a window covers (default 0.8); in (0, 1]. */
  pInit?: number;
  /** Independent runs from fresh random starts, each on the images the previous ones did not break (default 1). */
  restarts?: number;
}

export interface ResolvedSquare {
  queries: number;
  pInit: number;
  restarts: number;
}

/** Fills in defaults and checks ranges once; throws an `Error` naming the field, the value and what was expected. */
export function resolveSquare(options: SquareOptions = {}): ResolvedSquare {
  const queries = options.queries ?? 5000;
  if (!Number.isInteger(queries) || queries < 1)
    throw new Error(`square queries must be an integer ≥ 1, got ${queries}`);
  const pInit = options.pInit ?? 0.8;
  if (typeof pInit !== 'number' || !(pInit > 0 && pInit <= 1)) {
    throw new Error(`square pInit must be a number in (0, 1], got ${pInit}`);
  }
  const restarts = options.restarts ?? 1;
  if (!Number.isInteger(restarts) || restarts < 1) {
    throw new Error(`square restarts must be an integer ≥ 1, got ${restarts}`);
  }
  return { queries, pInit, restarts };
}

/**
 * The reference's window share at iteration `it` of a `queries`-long run: the iteration is first rescaled to a
 * 10 000-query run, then pInit is halved after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000.
 */
export function squareP(it: number, queries: number, pInit: number): number {
  const t = Math.floor((it / queries) * 10000);
  const bounds = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let halvings = 0;
  for (const b of bounds) if (t > b) halvings++;
  return pInit / 2 ** halvings;
}

/** Square Attack as a suite attack; options are checked here, once. */
export function squareAttack(options: SquareOptions = {}): SuiteAttackFn {
  const opts = resolveSquare(options);
  return (ctx) => square(ctx, opts);
}

interface Geometry {
  n: number;
  h: number;
  w: number;
  c: number;
  /** Values per image, h·w·c. */
  d: number;
}

/** Per-image view of a batch being attacked: the clean images and labels it refers to, by index into the batch. */
interface Batch {
  geo: Geometry;
  x: Float32Array;
  y: Int32Array;
  k: number;
  ctx: SuiteAttackContext;
  /** The restart in progress, for progress reports. */
  restart: number;
}

function checkContext(ctx: SuiteAttackContext): void {
  const { x, y } = ctx;
  if (x.rank !== 4 || x.dtype !== 'float32') {
    throw new Error(`square attack expects float32 images [batch,height,width,channels], got ${x.dtype} [${x.shape}]`);
  }
  if (y.rank !== 1 || y.shape[0] !== x.shape[0] || y.dtype !== 'int32') {
    throw new Error(`square attack expects int32 labels [${x.shape[0]}], got ${y.dtype} [${y.shape}]`);
  }
  if (ctx.norm !== 'linf' && ctx.norm !== 'l2')
    throw new Error(`square attack norm must be 'linf' or 'l2', got '${ctx.norm}'`);
  if (!Number.isFinite(ctx.eps) || ctx.eps < 0)
    throw new Error(`square attack eps must be a finite number ≥ 0, got ${ctx.eps}`);
  if (!Number.isInteger(ctx.numClasses) || ctx.numClasses < 2) {
    throw new Error(`square attack numClasses must be an integer ≥ 2, got ${ctx.numClasses}`);
  }
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('square attack aborted');
}

/**
 * Queries the model on `count` images packed in `images` whose labels are `labels[rows[i]]`; writes each image's
 * margin z_y − max_{i≠y} z_i into `margin` and whether it is misclassified into `wrong`. One awaited read.
 */
async function query(
  b: Batch,
  images: Float32Array,
  rows: Int32Array,
  count: number,
  margin: Float64Array,
  wrong: Uint8Array,
): Promise<void> {
  const { h, w, c, d } = b.geo;
  const z = tf.tidy(() => b.ctx.logits(tf.tensor4d(images.subarray(0, count * d), [count, h, w, c])));
  let values: Float32Array;
  try {
    if (z.shape[1] !== b.k)
      throw new Error(`square attack: the model gives ${z.shape[1]} logits, numClasses is ${b.k}`);
    values = (await z.data()) as Float32Array;
  } finally {
    z.dispose();
  }
  const k = b.k;
  for (let i = 0; i < count; i++) {
    const label = b.y[rows[i]];
    const o = i * k;
    let argmax = 0;
    let other = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = values[o + j];
      if (v > values[o + argmax]) argmax = j;
      if (j !== label && v > other) other = v;
    }
    margin[i] = values[o + label] - other;
    wrong[i] = argmax !== label ? 1 : 0;
  }
}

const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Runs every restart on the images still robust; returns the adversarial batch as a new tensor. */
async function square(ctx: SuiteAttackContext, opts: ResolvedSquare): Promise<tf.Tensor4D> {
  checkContext(ctx);
  const [n, h, w, c] = ctx.x.shape;
  const geo: Geometry = { n, h, w, c, d: h * w * c };
  if (n === 0 || ctx.eps === 0) return tf.clone(ctx.x);
  const x = Float32Array.from((await ctx.x.data()) as Float32Array);
  const y = Int32Array.from((await ctx.y.data()) as Int32Array);
  const b: Batch = { geo, x, y, k: ctx.numClasses, ctx, restart: 0 };
  const adv = Float32Array.from(x);
  const broken = new Uint8Array(n);
  const rng = Rng.fromSeed(ctx.seed);
  for (let r = 0; r < opts.restarts; r++) {
    const rows = Int32Array.from(Array.from({ length: n }, (_, i) => i).filter((i) => !broken[i]));
    if (rows.length === 0) break;
    const run = ctx.norm === 'linf' ? runLinf : runL2;
    b.restart = r;
    await run(b, rows, opts, Rng.fromSeed(rng.seed()), adv, broken);
  }
  return tf.tensor4d(adv, [n, h, w, c]);
}

/**
 * State of one restart over `rows` (indices into the batch): the best image so far per row (packed), its margin,
 * and which rows are broken. The loop is shared by both norms; only the start and the proposal differ.
 */
interface RunState {
  rows: Int32Array;
  best: Float32Array;
  bestMargin: Float64Array;
  done: Uint8Array;
}

type Propose = (row: number, slot: number, best: Float32Array, out: Float32Array, it: number) => void;

async function loop(
  b: Batch,
  state: RunState,
  opts: ResolvedSquare,
  propose: Propose,
  adv: Float32Array,
  broken: Uint8Array,
): Promise<void> {
  const { d } = b.geo;
  const m = state.rows.length;
  const cand = new Float32Array(m * d);
  const candRows = new Int32Array(m);
  const slots = new Int32Array(m);
  const margin = new Float64Array(m);
  const wrong = new Uint8Array(m);
  for (let it = 0; it < opts.queries - 1; it++) {
    checkAbort(b.ctx.signal);
    await b.ctx.onProgress?.((b.restart + it / (opts.queries - 1)) / opts.restarts);
    let count = 0;
    for (let s = 0; s < m; s++) {
      if (state.done[s]) continue;
      const out = cand.subarray(count * d, (count + 1) * d);
      propose(state.rows[s], s, state.best, out, it);
      candRows[count] = state.rows[s];
      slots[count] = s;
      count++;
    }
    if (count === 0) break;
    await query(b, cand, candRows, count, margin, wrong);
    for (let i = 0; i < count; i++) {
      const s = slots[i];
      if (margin[i] < state.bestMargin[s] || wrong[i]) {
        state.bestMargin[s] = margin[i];
        state.best.set(cand.subarray(i * d, (i + 1) * d), s * d);
      }
      if (wrong[i]) state.done[s] = 1;
    }
  }
  for (let s = 0; s < m; s++) {
    const row = state.rows[s];
    adv.set(state.best.subarray(s * d, (s + 1) * d), row * d);
    if (state.done[s]) broken[row] = 1;
  }
}

/** Queries the start images of a restart and fills the state's margins and done flags. */
async function start(b: Batch, rows: Int32Array, best: Float32Array): Promise<RunState> {
  const m = rows.length;
  const bestMargin = new Float64Array(m);
  const wrong = new Uint8Array(m);
  await query(b, best, rows, m, bestMargin, wrong);
  return { rows, best, bestMargin, done: wrong };
}

/** Window side for share p of the image: round(√(p·h·w)), at least `min`, at most the image's smaller side. */
function side(p: number, geo: Geometry, min: number): number {
  const s = Math.max(Math.round(Math.sqrt((p * geo.d) / geo.c)), min);
  return Math.min(s, geo.h, geo.w);
}

async function runLinf(
  b: Batch,
  rows: Int32Array,
  opts: ResolvedSquare,
  rng: Rng,
  adv: Float32Array,
  broken: Uint8Array,
): Promise<void> {
  const { h, w, c, d } = b.geo;
  const eps = b.ctx.eps;
  const { x } = b;
  const m = rows.length;
  // Start: vertical stripes, one random sign per (column, channel), the same down each column.
  const best = new Float32Array(m * d);
  const stripe = new Float32Array(w * c);
  for (let s = 0; s < m; s++) {
    for (let j = 0; j < stripe.length; j++) stripe[j] = rng.next() < 0.5 ? -eps : eps;
    const xo = rows[s] * d;
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w * c; j++) {
        const o = i * w * c + j;
        best[s * d + o] = clip01(x[xo + o] + stripe[j]);
      }
    }
  }
  const state = await start(b, rows, best);
  const signs = new Float32Array(c);
  const propose: Propose = (row, slot, bestAll, out, it) => {
    out.set(bestAll.subarray(slot * d, (slot + 1) * d));
    const sz = side(squareP(it, opts.queries, opts.pInit), b.geo, 1);
    const vh = rng.int(h - sz + 1);
    const vw = rng.int(w - sz + 1);
    for (let ch = 0; ch < c; ch++) signs[ch] = rng.next() < 0.5 ? -eps : eps;
    const xo = row * d;
    for (let i = vh; i < vh + sz; i++) {
      for (let j = vw; j < vw + sz; j++) {
        const o = (i * w + j) * c;
        // best + 2ε·sign, projected on the ε-box and [0,1]: the box's face on that side.
        for (let ch = 0; ch < c; ch++) out[o + ch] = clip01(x[xo + o + ch] + signs[ch]);
      }
    }
  };
  await loop(b, state, opts, propose, adv, broken);
}

/**
 * The reference's pseudo-Gaussian bump on an a×bw rectangle: nested rectangles around the centre, each adding
 * 1/(r+1)², normalised to unit L2 norm, row-major.
 */
function rectangles(a: number, bw: number): Float64Array {
  const out = new Float64Array(a * bw);
  const xc = Math.floor(a / 2) + 1;
  const yc = Math.floor(bw / 2) + 1;
  let r0 = xc - 1;
  let c0 = yc - 1;
  for (let counter = 0; counter < Math.max(xc, yc); counter++) {
    const v = 1 / (counter + 1) ** 2;
    for (let i = Math.max(r0, 0); i < Math.min(r0 + 2 * counter + 1, a); i++) {
      for (let j = Math.max(c0, 0); j < Math.min(c0 + 2 * counter + 1, bw); j++) out[i * bw + j] += v;
    }
    r0--;
    c0--;
  }
  normalise(out);
  return out;
}

function normalise(v: Float64Array): void {
  let sq = 0;
  for (const e of v) sq += e * e;
  const norm = Math.sqrt(sq);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
}

/**
 * An s×s perturbation of unit L2 norm: a bump with positive sign on the top half and negative on the bottom half
 * (transposed with probability ½), as the reference's `meta_pseudo_gaussian_pert`.
 */
export function pseudoGaussian(s: number, transpose: boolean): Float64Array {
  const out = new Float64Array(s * s);
  const top = Math.floor(s / 2);
  if (top > 0) out.set(rectangles(top, s), 0);
  const bottom = rectangles(s - top, s);
  for (let i = 0; i < bottom.length; i++) out[top * s + i] = -bottom[i];
  normalise(out);
  if (!transpose) return out;
  const t = new Float64Array(s * s);
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[j * s + i] = out[i * s + j];
  return t;
}

/**
 * Writes clip(x + ε·δ/‖δ‖₂, 0, 1) into `out`. Clipping towards x (which lies in [0,1]) cannot leave the ball; the
 * radius is shrunk by a relative 1e-6 so that float32 rounding of x + δ cannot push it over ε either.
 */
function onSphere(x: Float32Array, xo: number, delta: Float64Array, eps: number, out: Float32Array): void {
  let sq = 0;
  for (const v of delta) sq += v * v;
  const scale = sq > 0 ? (eps * (1 - 1e-6)) / Math.sqrt(sq) : 0;
  for (let i = 0; i < delta.length; i++) out[i] = clip01(x[xo + i] + delta[i] * scale);
}

async function runL2(
  b: Batch,
  rows: Int32Array,
  opts: ResolvedSquare,
  rng: Rng,
  adv: Float32Array,
  broken: Uint8Array,
): Promise<void> {
  const { h, w, c, d } = b.geo;
  const eps = b.ctx.eps;
  const { x } = b;
  const m = rows.length;
  // Start: a 5×5 grid of bumps (side ⌊h/5⌋, centred), each with a random sign per channel, scaled to the sphere.
  const best = new Float32Array(m * d);
  const delta = new Float64Array(d);
  const g = Math.max(Math.floor(h / 5), 1);
  const h0 = Math.floor((h - g * Math.floor(h / g)) / 2);
  const w0 = Math.floor((w - g * Math.floor(w / g)) / 2);
  for (let s = 0; s < m; s++) {
    delta.fill(0);
    for (let vh = h0; vh + g <= h; vh += g) {
      for (let vw = w0; vw + g <= w; vw += g) {
        const bump = pseudoGaussian(g, rng.next() < 0.5);
        for (let ch = 0; ch < c; ch++) {
          const sign = rng.next() < 0.5 ? -1 : 1;
          for (let i = 0; i < g; i++) {
            for (let j = 0; j < g; j++) delta[((vh + i) * w + vw + j) * c + ch] += sign * bump[i * g + j];
          }
        }
      }
    }
    onSphere(x, rows[s] * d, delta, eps, best.subarray(s * d, (s + 1) * d));
  }
  const state = await start(b, rows, best);
  const winNorm = new Float64Array(c);
  const propose: Propose = (row, slot, bestAll, out, it) => {
    const xo = row * d;
    const bo = slot * d;
    for (let i = 0; i < d; i++) delta[i] = bestAll[bo + i] - x[xo + i];
    let sz = side(squareP(it, opts.queries, opts.pInit), b.geo, 3);
    if (sz % 2 === 0) sz = sz + 1 <= Math.min(h, w) ? sz + 1 : sz - 1;
    const vh = rng.int(h - sz + 1);
    const vw = rng.int(w - sz + 1);
    const vh2 = rng.int(h - sz + 1);
    const vw2 = rng.int(w - sz + 1);
    const in1 = (i: number, j: number) => i >= vh && i < vh + sz && j >= vw && j < vw + sz;
    const in2 = (i: number, j: number) => i >= vh2 && i < vh2 + sz && j >= vw2 && j < vw2 + sz;
    // ‖δ‖ over the image, over both windows, and per channel over the first window.
    let image = 0;
    let windows = 0;
    winNorm.fill(0);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const a = in1(i, j);
        const both = a || in2(i, j);
        for (let ch = 0; ch < c; ch++) {
          const v = delta[(i * w + j) * c + ch];
          image += v * v;
          if (both) windows += v * v;
          if (a) winNorm[ch] += v * v;
        }
      }
    }
    // Room on the sphere left outside the windows, shared by the channels, plus the mass of both windows.
    const radius = Math.sqrt(Math.max(eps * eps - image, 0) / c + windows);
    const bump = pseudoGaussian(sz, rng.next() < 0.5);
    const proposal = new Float64Array(sz * sz);
    const newWindow = new Float64Array(sz * sz * c);
    for (let ch = 0; ch < c; ch++) {
      const sign = rng.next() < 0.5 ? -1 : 1;
      const old = Math.sqrt(winNorm[ch]) + 1e-12;
      let sq = 0;
      for (let i = 0; i < sz; i++) {
        for (let j = 0; j < sz; j++) {
          const v = sign * bump[i * sz + j] + delta[((vh + i) * w + vw + j) * c + ch] / old;
          proposal[i * sz + j] = v;
          sq += v * v;
        }
      }
      const scale = radius / (Math.sqrt(sq) + 1e-12);
      for (let q = 0; q < sz * sz; q++) newWindow[q * c + ch] = proposal[q] * scale;
    }
    for (let i = vh2; i < vh2 + sz; i++)
      for (let j = vw2; j < vw2 + sz; j++) for (let ch = 0; ch < c; ch++) delta[(i * w + j) * c + ch] = 0;
    for (let i = 0; i < sz; i++) {
      for (let j = 0; j < sz; j++) {
        for (let ch = 0; ch < c; ch++) delta[((vh + i) * w + vw + j) * c + ch] = newWindow[(i * sz + j) * c + ch];
      }
    }
    onSphere(x, xo, delta, eps, out);
  };
  await loop(b, state, opts, propose, adv, broken);
}
