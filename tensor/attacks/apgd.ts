import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random';
import type { SuiteAttackContext, SuiteAttackFn } from './contract';
import { isTargeted, lossFunction, minClasses } from './losses';
import type { AttackLoss } from './losses';

/**
 * Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
 * parameter-free attacks"), L∞ and L2, as in AutoAttack:
 * - start x0 = x + ε·u/‖u‖ (L∞: u ~ U[−1,1]ⁿ scaled to max |u| = 1; L2: Gaussian scaled to the sphere), clipped to
 *   [0,1];
 * - step η = 2ε per example; z = P(x_k + η·sign(∇)) (L2: η·∇/‖∇‖₂), then
 *   x_{k+1} = P(x_k + α·(z − x_k) + (1 − α)·(x_k − x_{k−1})) with α = 0.75 (α = 1 on the first step);
 * - checkpoints after ⌊0.22N⌋ iterations, each interval ⌊0.03N⌋ shorter than the last down to ⌊0.06N⌋
 *   (N = 100: 22, 41, 57, 70, 80, 87, 93, 99); at a checkpoint an example halves η and restarts from its best-loss
 *   point when (i) its loss rose in at most ρ = 75 % of the steps since the last checkpoint, or (ii) its η was not
 *   halved at the last checkpoint and its best loss has not improved since;
 * - success at any iteration counts: an example is done (and leaves the batch) at the first iterate the model
 *   misclassifies, which is what is returned for it.
 *
 * One deliberate reading of the paper over the reference code: the first step of a checkpoint interval compares
 * the loss with the start point's (the code compares the first iterate's loss with 0).
 */
export interface ApgdOptions {
  /** Loss to maximise: 'ce' (default) or 'dlr'. */
  loss?: 'ce' | 'dlr';
  /** Gradient steps per restart (default 100). */
  iterations?: number;
  /** Runs from fresh random starts, each only on the points no earlier run broke (default 1). */
  restarts?: number;
}

export interface ApgdTargetedOptions {
  /** Target classes per image: the 2nd..(targets+1)-th highest clean logits (default 9, capped at classes − 1). */
  targets?: number;
  /** Gradient steps per target and restart (default 100). */
  iterations?: number;
  /** Runs per target (default 1). */
  restarts?: number;
  /** Loss (default 'dlr-targeted'; 'ce-targeted' for models with fewer than 4 classes). */
  loss?: 'dlr-targeted' | 'ce-targeted';
}

interface Resolved {
  iterations: number;
  restarts: number;
}

function checkCounts(name: string, o: { iterations?: number; restarts?: number }): Resolved {
  const { iterations = 100, restarts = 1 } = o;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`${name} iterations must be an integer ≥ 1, got ${iterations}`);
  }
  if (!Number.isInteger(restarts) || restarts < 1) {
    throw new Error(`${name} restarts must be an integer ≥ 1, got ${restarts}`);
  }
  return { iterations, restarts };
}

/** The checkpoint iterations (1-based counts of steps taken) for N iterations, e.g. N = 100: 22, 41, …, 99. */
export function apgdCheckpoints(iterations: number): number[] {
  const first = Math.max(Math.floor(0.22 * iterations), 1);
  const decrease = Math.max(Math.floor(0.03 * iterations), 1);
  const minimum = Math.max(Math.floor(0.06 * iterations), 1);
  const out: number[] = [];
  for (let k = first, at = first; at <= iterations;) {
    out.push(at);
    k = Math.max(k - decrease, minimum);
    at += k;
  }
  return out;
}

/** Per-example L2 norm, shape [b,1,1,1]. */
function norm2(t: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.sum(tf.square(t), [1, 2, 3], true));
}

/** The tensors one run carries, one row per still-active example; compacted together. */
interface Rows {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  t?: tf.Tensor1D;
  lo?: tf.Tensor4D;
  hi?: tf.Tensor4D;
  adv: tf.Tensor4D;
  old: tf.Tensor4D;
  best: tf.Tensor4D;
  grad: tf.Tensor4D;
  gradBest: tf.Tensor4D;
}

const boolMask = (flags: ArrayLike<boolean | number>, shape: number[]) =>
  tf.tensor(
    Int32Array.from(flags as ArrayLike<number>, (v) => (v ? 1 : 0)),
    shape,
    'bool',
  );

/**
 * One APGD run on a batch. Returns per example its adversarial image (the first misclassified iterate, or the
 * best-loss point when none was) and whether it was broken. The caller owns `adv`; `x`, `y`, `t` stay the caller's.
 */
async function apgdRun(
  ctx: SuiteAttackContext,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  t: tf.Tensor1D | undefined,
  loss: AttackLoss,
  iterations: number,
  seed: number,
  report: (iteration: number) => void | Promise<void> = () => {},
): Promise<{ adv: tf.Tensor4D; broken: Uint8Array }> {
  const n = x.shape[0];
  const { eps, norm, logits, signal } = ctx;
  const linf = norm === 'linf';
  const done: { idx: number[]; adv: tf.Tensor4D }[] = [];
  const broken = new Uint8Array(n);
  // Original index of each active row.
  let rows: number[] = Array.from({ length: n }, (_, i) => i);
  let r = {} as Rows;

  const project = (v: tf.Tensor, s: Rows) => {
    if (linf) return tf.minimum(tf.maximum(v, s.lo!), s.hi!);
    const d = tf.sub(v, s.x);
    const scale = tf.minimum(tf.div(eps, tf.add(norm2(d), 1e-12)), 1);
    return tf.clipByValue(tf.add(s.x, tf.mul(d, scale)), 0, 1);
  };

  /** Loss per example, correctness per example, and d(sum of losses)/d(input) at `s.adv`. */
  const evaluateAt = async (s: Rows): Promise<{ grad: tf.Tensor4D; loss: Float32Array; correct: Float32Array }> => {
    const f = lossFunction(loss, s.y, s.t);
    const kept: { z?: tf.Tensor2D; l?: tf.Tensor1D } = {};
    const grad = tf.grad((a: tf.Tensor) => {
      const z = (kept.z = tf.keep(logits(a as tf.Tensor4D)));
      return tf.sum((kept.l = tf.keep(f(z))));
    })(s.adv) as tf.Tensor4D;
    const { z, l } = kept as { z: tf.Tensor2D; l: tf.Tensor1D };
    const packed = tf.tidy(() => tf.concat([l, tf.cast(tf.equal(tf.argMax(z, 1), s.y), 'float32')]));
    z.dispose();
    l.dispose();
    const values = (await packed.data()) as Float32Array;
    packed.dispose();
    const m = s.adv.shape[0];
    return { grad, loss: values.slice(0, m), correct: values.slice(m) };
  };

  const m0 = n;
  let eta = new Float32Array(m0).fill(2 * eps);
  let lossBest = new Float32Array(0);
  let lossPrev = new Float32Array(0);
  let lossBestLastCheck = new Float32Array(0);
  // As in the reference code, the start counts as "halved last time", so (ii) cannot fire at the first checkpoint.
  let reducedLastCheck = new Uint8Array(m0).fill(1);
  let increases = new Uint8Array(m0);

  /** Moves the rows in `leave` (positions in the active batch) to `done` and keeps the others. */
  const retire = (leave: number[]) => {
    if (leave.length === 0) return;
    const keep: number[] = [];
    const out = new Set(leave);
    for (let j = 0; j < rows.length; j++) if (!out.has(j)) keep.push(j);
    const leaveIdx = tf.tensor1d(leave, 'int32');
    done.push({ idx: leave.map((j) => rows[j]), adv: tf.gather(r.adv, leaveIdx) as tf.Tensor4D });
    leaveIdx.dispose();
    for (const j of leave) broken[rows[j]] = 1;
    const keepIdx = tf.tensor1d(keep, 'int32');
    const next = {} as Rows;
    for (const [k, v] of Object.entries(r) as [keyof Rows, tf.Tensor | undefined][]) {
      if (v === undefined) continue;
      (next as unknown as Record<string, tf.Tensor>)[k] = tf.gather(v, keepIdx);
      if (v !== x && v !== y && v !== t) v.dispose();
    }
    keepIdx.dispose();
    r = next;
    rows = keep.map((j) => rows[j]);
    const f32 = (a: Float32Array) => Float32Array.from(keep, (j) => a[j]);
    const u8 = (a: Uint8Array) => Uint8Array.from(keep, (j) => a[j]);
    eta = f32(eta);
    lossBest = f32(lossBest);
    lossPrev = f32(lossPrev);
    lossBestLastCheck = f32(lossBestLastCheck);
    reducedLastCheck = u8(reducedLastCheck);
    increases = u8(increases);
  };

  const disposeRows = () => {
    for (const v of Object.values(r) as (tf.Tensor | undefined)[]) {
      if (v !== undefined && v !== x && v !== y && v !== t) v.dispose();
    }
  };

  try {
    r.x = x;
    r.y = y;
    r.t = t;
    if (linf) {
      r.lo = tf.tidy(() => tf.maximum(tf.sub(x, eps), 0) as tf.Tensor4D);
      r.hi = tf.tidy(() => tf.minimum(tf.add(x, eps), 1) as tf.Tensor4D);
    }
    r.adv = tf.tidy(() => {
      if (linf) {
        const u = tf.randomUniform(x.shape, -1, 1, 'float32', seed);
        const unit = tf.div(u, tf.max(tf.abs(u), [1, 2, 3], true));
        return tf.clipByValue(tf.add(x, tf.mul(unit, eps)), 0, 1) as tf.Tensor4D;
      }
      const u = tf.randomNormal(x.shape, 0, 1, 'float32', seed);
      return tf.clipByValue(tf.add(x, tf.mul(tf.div(u, tf.add(norm2(u), 1e-12)), eps)), 0, 1) as tf.Tensor4D;
    });
    r.old = tf.clone(r.adv);
    r.best = tf.clone(r.adv);
    const first = await evaluateAt(r);
    r.grad = first.grad;
    r.gradBest = tf.clone(first.grad);
    lossBest = first.loss.slice();
    lossPrev = first.loss.slice();
    lossBestLastCheck = first.loss.slice();
    retire(indicesWhere(first.correct, (c) => c === 0));

    let k = Math.max(Math.floor(0.22 * iterations), 1);
    const decrease = Math.max(Math.floor(0.03 * iterations), 1);
    const kMin = Math.max(Math.floor(0.06 * iterations), 1);
    let counter = 0;
    for (let i = 0; i < iterations && rows.length > 0; i++) {
      signal?.throwIfAborted();
      await report(i);
      const alpha = i === 0 ? 1 : 0.75;
      const m = rows.length;
      const s = r;
      const next = tf.tidy(() => {
        const step = tf.tensor4d(eta, [m, 1, 1, 1]);
        const dir = linf ? tf.sign(s.grad) : tf.div(s.grad, tf.add(norm2(s.grad), 1e-12));
        const z = project(tf.add(s.adv, tf.mul(dir, step)), s);
        const moved = tf.add(s.adv, tf.add(tf.mul(tf.sub(z, s.adv), alpha), tf.mul(tf.sub(s.adv, s.old), 1 - alpha)));
        return project(moved, s) as tf.Tensor4D;
      });
      r.old.dispose();
      r.old = r.adv;
      r.adv = next;
      r.grad.dispose();
      const at = await evaluateAt(r);
      r.grad = at.grad;

      const improved = new Uint8Array(m);
      for (let j = 0; j < m; j++) {
        if (at.loss[j] > lossPrev[j]) increases[j]++;
        lossPrev[j] = at.loss[j];
        if (at.loss[j] > lossBest[j]) {
          improved[j] = 1;
          lossBest[j] = at.loss[j];
        }
      }
      if (improved.some((v) => v)) {
        const mask = boolMask(improved, [m, 1, 1, 1]);
        const [best, gradBest] = tf.tidy(() => [tf.where(mask, r.adv, r.best), tf.where(mask, r.grad, r.gradBest)]);
        mask.dispose();
        r.best.dispose();
        r.gradBest.dispose();
        r.best = best as tf.Tensor4D;
        r.gradBest = gradBest as tf.Tensor4D;
      }

      counter++;
      if (counter === k) {
        const halve = new Uint8Array(m);
        for (let j = 0; j < m; j++) {
          const oscillating = increases[j] <= 0.75 * k;
          const stalled = !reducedLastCheck[j] && lossBestLastCheck[j] >= lossBest[j];
          halve[j] = oscillating || stalled ? 1 : 0;
          reducedLastCheck[j] = halve[j];
          lossBestLastCheck[j] = lossBest[j];
          increases[j] = 0;
          if (halve[j]) eta[j] /= 2;
        }
        if (halve.some((v) => v)) {
          const mask = boolMask(halve, [m, 1, 1, 1]);
          const [adv, grad] = tf.tidy(() => [tf.where(mask, r.best, r.adv), tf.where(mask, r.gradBest, r.grad)]);
          mask.dispose();
          r.adv.dispose();
          r.grad.dispose();
          r.adv = adv as tf.Tensor4D;
          r.grad = grad as tf.Tensor4D;
        }
        counter = 0;
        k = Math.max(k - decrease, kMin);
      }
      retire(indicesWhere(at.correct, (c) => c === 0));
    }

    // Unbroken rows return their best-loss point.
    const parts = [...done];
    if (rows.length > 0) parts.push({ idx: rows, adv: r.best });
    const order = parts.flatMap((p) => p.idx);
    const inverse = new Int32Array(n);
    order.forEach((orig, pos) => (inverse[orig] = pos));
    const adv = tf.tidy(() => {
      const all = parts.length === 1 ? parts[0].adv : tf.concat(parts.map((p) => p.adv));
      return tf.gather(all, tf.tensor1d(inverse, 'int32')) as tf.Tensor4D;
    });
    return { adv, broken };
  } finally {
    for (const p of done) p.adv.dispose();
    disposeRows();
  }
}

function indicesWhere(values: ArrayLike<number>, test: (v: number) => boolean): number[] {
  const out: number[] = [];
  for (let j = 0; j < values.length; j++) if (test(values[j])) out.push(j);
  return out;
}

/** Replaces rows `idx` of `full` by `rows` (in that order); returns a new tensor, disposes neither input. */
function replaceRows(full: tf.Tensor4D, idx: number[], rows: tf.Tensor4D): tf.Tensor4D {
  const n = full.shape[0];
  const inSet = new Uint8Array(n);
  for (const i of idx) inSet[i] = 1;
  const others = indicesWhere(inSet, (v) => v === 0);
  const inverse = new Int32Array(n);
  [...others, ...idx].forEach((orig, pos) => (inverse[orig] = pos));
  return tf.tidy(() => {
    const kept = tf.gather(full, tf.tensor1d(others, 'int32'));
    return tf.gather(tf.concat([kept, rows]), tf.tensor1d(inverse, 'int32')) as tf.Tensor4D;
  });
}

function checkContext(name: string, ctx: SuiteAttackContext, loss: AttackLoss): void {
  const { eps, norm, x, y, numClasses } = ctx;
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`${name}: norm must be 'linf' or 'l2', got '${norm}'`);
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new Error(`${name}: eps must be a finite number ≥ 0, got ${eps}`);
  }
  if (x.rank !== 4 || y.rank !== 1 || y.shape[0] !== x.shape[0]) {
    throw new Error(`${name}: expects images [b,h,w,c] and b labels, got [${x.shape}] and [${y.shape}]`);
  }
  if (numClasses < minClasses(loss)) {
    throw new Error(`${name}: loss '${loss}' needs at least ${minClasses(loss)} classes, the model has ${numClasses}`);
  }
}

/**
 * Runs `plan` (one entry per run: a target rank or undefined for untargeted) on the points no earlier run broke.
 * Each run draws its start from its own seed. Returns the adversarial images the caller owns.
 */
async function runPlan(
  ctx: SuiteAttackContext,
  loss: AttackLoss,
  iterations: number,
  plan: (number | undefined)[],
): Promise<tf.Tensor4D> {
  const { x, y } = ctx;
  const n = x.shape[0];
  const rng = Rng.fromSeed(ctx.seed);
  let out = tf.clone(x);
  const broken = new Uint8Array(n);
  // Clean logits' classes by decreasing score, for the targets (computed once).
  let ranked: number[][] | undefined;
  if (isTargeted(loss) && n > 0) {
    const k = Math.min(ctx.numClasses, 1 + Math.max(...plan.map((p) => p ?? 0)));
    const top = tf.tidy(() => tf.topk(ctx.logits(x), k).indices);
    ranked = (await top.array()) as number[][];
    top.dispose();
  }
  try {
    for (const [j, rank] of plan.entries()) {
      const seed = rng.seed();
      const active = indicesWhere(broken, (v) => v === 0);
      if (active.length === 0) break;
      const idx = tf.tensor1d(active, 'int32');
      const xs = tf.gather(x, idx) as tf.Tensor4D;
      const ys = tf.gather(y, idx) as tf.Tensor1D;
      idx.dispose();
      const ts =
        rank === undefined
          ? undefined
          : tf.tensor1d(
              active.map((i) => ranked![i][rank]),
              'int32',
            );
      try {
        const res = await apgdRun(ctx, xs, ys, ts, loss, iterations, seed, (i) =>
          ctx.onProgress?.((j + i / iterations) / plan.length),
        );
        const merged = replaceRows(out, active, res.adv);
        res.adv.dispose();
        out.dispose();
        out = merged;
        res.broken.forEach((b, j) => {
          if (b) broken[active[j]] = 1;
        });
      } finally {
        xs.dispose();
        ys.dispose();
        ts?.dispose();
      }
    }
    return out;
  } catch (err) {
    out.dispose();
    throw err;
  }
}

/** APGD with the CE (default) or DLR loss, as a suite attack. Options are checked here, once. */
export function apgd(options: ApgdOptions = {}): SuiteAttackFn {
  const loss = options.loss ?? 'ce';
  if (loss !== 'ce' && loss !== 'dlr') throw new Error(`apgd loss must be 'ce' or 'dlr', got '${String(loss)}'`);
  const { iterations, restarts } = checkCounts('apgd', options);
  return async (ctx) => {
    checkContext(`apgd-${loss}`, ctx, loss);
    if (ctx.eps === 0 || ctx.x.shape[0] === 0) return tf.clone(ctx.x);
    return runPlan(ctx, loss, iterations, new Array<undefined>(restarts).fill(undefined));
  };
}

/**
 * APGD-T: for each of the top `targets` other classes of the clean logits (2nd highest first), `restarts` runs of
 * APGD maximising the targeted loss towards it, each on the points still robust. Success is misclassification
 * (any wrong class), as in AutoAttack.
 */
export function apgdTargeted(options: ApgdTargetedOptions = {}): SuiteAttackFn {
  const { iterations, restarts } = checkCounts('apgd-t', options);
  const targets = options.targets ?? 9;
  if (!Number.isInteger(targets) || targets < 1)
    throw new Error(`apgd-t targets must be an integer ≥ 1, got ${targets}`);
  const requested = options.loss;
  if (requested !== undefined && requested !== 'dlr-targeted' && requested !== 'ce-targeted') {
    throw new Error(`apgd-t loss must be 'dlr-targeted' or 'ce-targeted', got '${String(requested)}'`);
  }
  return async (ctx) => {
    const loss = requested ?? (ctx.numClasses >= 4 ? 'dlr-targeted' : 'ce-targeted');
    checkContext('apgd-t', ctx, loss);
    if (ctx.eps === 0 || ctx.x.shape[0] === 0) return tf.clone(ctx.x);
    const count = Math.min(targets, ctx.numClasses - 1);
    const plan: number[] = [];
    for (let rank = 1; rank <= count; rank++) for (let k = 0; k < restarts; k++) plan.push(rank);
    return runPlan(ctx, loss, iterations, plan);
  };
}
