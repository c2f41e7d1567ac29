import * as tf from '@tensorflow/tfjs';
import { apgd } from '../attacks/apgd';
import type { Norm } from '../attacks/options';
import { logitsFunction } from '../models/logits';
import { batchTensors, checkLabeledImages } from './data';
import type { LabeledImages } from './data';
import { ROBUST } from './reduce';
import type { SuiteResult } from './reduce';
import { customAttackEntry, runSuiteShard } from './suite';
import type { SuiteAttackEntry } from './suite';

/**
 * The sanity panel: automatic signs of gradient masking or of an attack that did not converge (Carlini et al.
 * 2019's checklist, AutoAttack's checks). Every check returns data, never prose; the report and the gate decide
 * what to say and do.
 * - `eps-monotone`: robust accuracy rose with ε somewhere along a curve, beyond the noise of two proportions;
 * - `large-eps`: an attack at a radius that reaches every image (L∞ ε = 1) left points robust;
 * - `single-step`: the single-step attack (FGSM) broke points the iterative one did not;
 * - `more-iterations`: more iterations and restarts lowered accuracy beyond the noise (the attack had not converged);
 * - `black-box`: a black-box attack (Square) broke points the white-box ones missed, beyond the interval;
 * - `zero-gradients`: some images have an all-zero loss gradient at the clean point;
 * - `softmax-output`: the scores the attacks differentiate are probabilities (rows in [0,1] summing to 1);
 * - `non-deterministic`: two forward passes on the same images differ.
 */
export type SanityFlagName =
  | 'eps-monotone'
  | 'large-eps'
  | 'single-step'
  | 'more-iterations'
  | 'black-box'
  | 'zero-gradients'
  | 'softmax-output'
  | 'non-deterministic';

export interface SanityFlag {
  name: SanityFlagName;
  fired: boolean;
  /** False when the check had nothing to look at (e.g. `black-box` for a suite without a black-box attack). */
  evaluated: boolean;
  /** The figures the decision rests on (accuracies as fractions, counts as integers). */
  numbers: Record<string, number>;
}

/** z of a two-sided 95 % test. */
const Z95 = 1.959963984540054;

/** Whether accuracy `hi` of n exceeds accuracy `lo` of n by more than a 95 % two-proportion margin. */
function beyondNoise(
  hiCorrect: number,
  loCorrect: number,
  n: number,
): { diff: number; margin: number; fired: boolean } {
  if (n === 0) return { diff: 0, margin: 0, fired: false };
  const p1 = hiCorrect / n;
  const p2 = loCorrect / n;
  // Pooled standard error, with a floor of one image so that tiny slices do not fire on a single point.
  const se = Math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n);
  const margin = Math.max(Z95 * se, 1 / n);
  return { diff: p1 - p2, margin, fired: p1 - p2 > margin };
}

/**
 * `eps-monotone` from a robust-accuracy curve (any order of ε, all on the same n images): fires when accuracy at a
 * larger ε exceeds accuracy at a smaller one by more than the two-proportion margin.
 */
export function epsMonotoneFlag(points: readonly { eps: number; correct: number; total: number }[]): SanityFlag {
  const sorted = [...points].sort((a, b) => a.eps - b.eps);
  let worst = { diff: -Infinity, margin: 0, fired: false, at: NaN };
  for (let j = 1; j < sorted.length; j++) {
    for (let i = 0; i < j; i++) {
      if (sorted[i].total !== sorted[j].total) throw new Error('eps curve points must share one image count');
      const b = beyondNoise(sorted[j].correct, sorted[i].correct, sorted[j].total);
      if (b.diff - b.margin > worst.diff - worst.margin) worst = { ...b, at: sorted[j].eps };
    }
  }
  const evaluated = sorted.length >= 2;
  return {
    name: 'eps-monotone',
    fired: evaluated && worst.fired,
    evaluated,
    numbers: evaluated
      ? { points: sorted.length, largestRise: worst.diff, margin: worst.margin, atEps: worst.at }
      : { points: sorted.length },
  };
}

/** `more-iterations`: robust counts of a weaker and a stronger run of the same attack on the same n images. */
export function moreIterationsFlag(weakerCorrect: number, strongerCorrect: number, n: number): SanityFlag {
  const b = beyondNoise(weakerCorrect, strongerCorrect, n);
  return {
    name: 'more-iterations',
    fired: b.fired,
    evaluated: n > 0,
    numbers: {
      weaker: n ? weakerCorrect / n : 0,
      stronger: n ? strongerCorrect / n : 0,
      drop: b.diff,
      margin: b.margin,
    },
  };
}

/**
 * `single-step`: per image, robust under the single-step attack and under the iterative one (both false for images
 * wrong on clean). Fires when the single-step attack broke more than max(1, 1 %) of the images the iterative one
 * left robust.
 */
export function singleStepFlag(singleStepRobust: readonly boolean[], iterativeRobust: readonly boolean[]): SanityFlag {
  const n = singleStepRobust.length;
  if (iterativeRobust.length !== n) throw new Error(`${n} single-step flags but ${iterativeRobust.length} iterative`);
  let missed = 0;
  for (let i = 0; i < n; i++) if (!singleStepRobust[i] && iterativeRobust[i]) missed++;
  const count = (a: readonly boolean[]) => a.filter(Boolean).length;
  return {
    name: 'single-step',
    fired: missed > Math.max(1, 0.01 * n),
    evaluated: n > 0,
    numbers: {
      brokenOnlyBySingleStep: missed,
      singleStep: n ? count(singleStepRobust) / n : 0,
      iterative: n ? count(iterativeRobust) / n : 0,
    },
  };
}

/** Attacks that use no gradient. */
export const BLACK_BOX_ATTACKS: readonly string[] = ['square'];

/**
 * `black-box` from a suite result: the accuracy before the first black-box attack (the white-box figure) lies above
 * the 95 % Wilson interval of the accuracy after it. AutoAttack warns at any drop above 0.2 pp; the interval keeps a
 * few points on a thousand images from firing it.
 */
export function blackBoxFlag(result: SuiteResult, blackBox: readonly string[] = BLACK_BOX_ATTACKS): SanityFlag {
  const i = result.perAttack.findIndex((a) => blackBox.includes(a.name));
  if (i < 0) return { name: 'black-box', fired: false, evaluated: false, numbers: {} };
  const before = i === 0 ? result.clean : result.perAttack[i - 1].after;
  const after = result.perAttack[i].after;
  return {
    name: 'black-box',
    fired: before.accuracy > after.upper,
    evaluated: true,
    numbers: {
      whiteBox: before.accuracy,
      afterBlackBox: after.accuracy,
      broke: result.perAttack[i].broke,
      upper: after.upper,
    },
  };
}

export interface SanityOptions {
  norm: Norm;
  eps: number;
  /** First image of the slice the panel attacks (default 0). */
  start?: number;
  /** Images in the slice (default 64, capped at what the data holds). */
  count?: number;
  /** Iterations of the quick APGD-CE runs (default 20; the stronger run uses 5× with 2 restarts). */
  iterations?: number;
  seed?: number;
  /** The suite's result on the same data, for the `black-box` check. */
  suite?: SuiteResult;
  signal?: AbortSignal;
}

/**
 * Runs every check on a bounded slice of `data` (default 64 images) and returns one flag per check, in the order
 * of {@link SanityFlagName}. Cost: about 300 gradient evaluations of the slice. Leaves no tensors behind.
 */
export async function sanityPanel(model: tf.LayersModel, data: LabeledImages, o: SanityOptions): Promise<SanityFlag[]> {
  const { norm, eps, start = 0, iterations = 20, seed = 0, signal } = o;
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`sanity norm must be 'linf' or 'l2', got '${String(norm)}'`);
  if (!Number.isFinite(eps) || eps <= 0) throw new Error(`sanity eps must be a number > 0, got ${eps}`);
  if (!Number.isInteger(start) || start < 0 || start >= data.count) {
    throw new Error(`sanity start must be an image index in 0..${data.count - 1}, got ${start}`);
  }
  const count = Math.min(o.count ?? 64, data.count - start);
  if (!Number.isInteger(count) || count < 1) throw new Error(`sanity count must be an integer ≥ 1, got ${o.count}`);
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`sanity iterations must be an integer ≥ 1, got ${iterations}`);
  }
  checkLabeledImages(data, start + count);
  const per = data.height * data.width * data.channels;
  const large = norm === 'linf' ? 1 : Math.sqrt(per);

  /** Per image of the slice: robust (correct on clean and under the attack) at radius `radius`. */
  const robustUnder = async (entry: SuiteAttackEntry, radius: number, s: number): Promise<boolean[]> => {
    const shard = await runSuiteShard(model, data, {
      attacks: [entry],
      norm,
      eps: radius,
      start,
      count,
      batchSize: count,
      seed: s,
      signal,
    });
    return shard.brokenBy.map((b) => b === ROBUST);
  };
  const sum = (flags: boolean[]) => flags.filter(Boolean).length;
  const quick: SuiteAttackEntry = { name: 'apgd-ce', run: apgd({ iterations }) };

  // Clean correctness and an ε curve: 0, ε/4, ε/2, ε, 2ε (capped below the large radius), large.
  const radii = [eps / 4, eps / 2, eps, Math.min(2 * eps, large)].filter((r, i, a) => r < large && a.indexOf(r) === i);
  const curve: { eps: number; correct: number; total: number }[] = [];
  const shard0 = await runSuiteShard(model, data, { attacks: [], norm, eps, start, count, batchSize: count });
  curve.push({ eps: 0, correct: shard0.brokenBy.filter((b) => b === ROBUST).length, total: count });
  let atEps: boolean[] = [];
  for (const r of radii) {
    const flags = await robustUnder(quick, r, seed + 1);
    if (r === eps) atEps = flags;
    curve.push({ eps: r, correct: sum(flags), total: count });
  }
  const atLarge = await robustUnder(quick, large, seed + 2);
  curve.push({ eps: large, correct: sum(atLarge), total: count });
  if (atEps.length === 0) atEps = atLarge; // ε itself reaches every image

  const largeFlag: SanityFlag = {
    name: 'large-eps',
    fired: sum(atLarge) > 0,
    evaluated: true,
    numbers: { eps: large, accuracy: sum(atLarge) / count, robust: sum(atLarge) },
  };

  // Iterative vs single step, and more iterations/restarts.
  const strong: SuiteAttackEntry = { name: 'apgd-ce-strong', run: apgd({ iterations: 5 * iterations, restarts: 2 }) };
  const atEpsStrong = await robustUnder(strong, eps, seed + 3);
  const fgsm = await robustUnder(customAttackEntry({ name: 'fgsm', method: 'fgsm', norm, eps }), eps, seed + 4);
  const iterative = atEps.map((r, i) => r && atEpsStrong[i]);
  const singleStep = singleStepFlag(fgsm, iterative);
  const more = moreIterationsFlag(sum(atEps), sum(atEpsStrong), count);

  // Gradients, outputs, determinism at the clean slice.
  const idx = Array.from({ length: count }, (_, i) => start + i);
  const { x, y } = batchTensors(data, idx);
  let zeroShare: number;
  let softmaxShare: number;
  let maxDiff: number;
  let scale: number;
  try {
    const logits = logitsFunction(model);
    const packed = tf.tidy(() => {
      const classes = data.numClasses;
      const onehot = tf.oneHot(y, classes).toFloat();
      const g = tf.grad((a: tf.Tensor) => tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits(a as tf.Tensor4D))))))(x);
      const zero = tf.equal(tf.max(tf.abs(g), [1, 2, 3]), 0);
      const z1 = logits(x);
      const z2 = logits(x);
      const inRange = tf.logicalAnd(tf.greaterEqual(tf.min(z1, 1), 0), tf.lessEqual(tf.max(z1, 1), 1));
      const sumsToOne = tf.less(tf.abs(tf.sub(tf.sum(z1, 1), 1)), 1e-3);
      const softmaxLike = tf.logicalAnd(inRange, sumsToOne);
      return tf.stack([
        tf.mean(tf.cast(zero, 'float32')),
        tf.mean(tf.cast(softmaxLike, 'float32')),
        tf.max(tf.abs(tf.sub(z1, z2))),
        tf.max(tf.abs(z1)),
      ]);
    });
    [zeroShare, softmaxShare, maxDiff, scale] = Array.from(await packed.data());
    packed.dispose();
  } finally {
    x.dispose();
    y.dispose();
  }

  const flags: SanityFlag[] = [
    epsMonotoneFlag(curve),
    largeFlag,
    singleStep,
    more,
    o.suite ? blackBoxFlag(o.suite) : { name: 'black-box', fired: false, evaluated: false, numbers: {} },
    {
      name: 'zero-gradients',
      fired: zeroShare > 0,
      evaluated: true,
      numbers: { share: zeroShare, images: count },
    },
    {
      name: 'softmax-output',
      fired: softmaxShare === 1,
      evaluated: true,
      numbers: { share: softmaxShare },
    },
    {
      name: 'non-deterministic',
      fired: maxDiff > 1e-5 * Math.max(1, scale),
      evaluated: true,
      numbers: { maxDifference: maxDiff },
    },
  ];
  return flags;
}
