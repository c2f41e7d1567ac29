/**
 * Reduction of suite shard results to one evaluation result, and binomial confidence intervals. Pure: no tensors,
 * no I/O, so a workflow or an activity can import it.
 */

/** Per image: −2 wrong on the clean input, −1 robust to every attack, i ≥ 0 the index of the first attack that broke it. */
export const WRONG_CLEAN = -2;
export const ROBUST = -1;

/** What one shard of a suite evaluation produces (plain numbers, safe for JSON and Temporal payloads). */
export interface SuiteShardResult {
  /** Index of the shard's first image in the evaluated set. */
  start: number;
  count: number;
  /** True label per image. */
  labels: number[];
  /** Predicted class per clean image. */
  cleanPredictions: number[];
  /** Per image: −2 wrong on clean, −1 robust to every attack, i = index of the first attack that broke it. */
  brokenBy: number[];
  /** Attack names, in the order they ran. */
  attacks: string[];
  seconds: number;
  backend: string;
}

/** An accuracy with its 95 % Wilson score interval. */
export interface Accuracy {
  correct: number;
  total: number;
  accuracy: number;
  lower: number;
  upper: number;
}

export interface SuiteAttackSummary {
  name: string;
  /** Points this attack broke that every earlier attack left robust. */
  broke: number;
  /** Robust accuracy after this attack (and all before it). */
  after: Accuracy;
}

export interface SuiteClassSummary {
  label: number;
  count: number;
  clean: Accuracy;
  worstCase: Accuracy;
}

/** A whole evaluation under a suite. */
export interface SuiteResult {
  count: number;
  attacks: string[];
  clean: Accuracy;
  perAttack: SuiteAttackSummary[];
  /** Per-example worst case: correct on clean and on every attack. */
  worstCase: Accuracy;
  /** Per true class (only classes that occur). */
  perClass: SuiteClassSummary[];
  /** Per image, in evaluation order (see {@link SuiteShardResult.brokenBy}). */
  brokenBy: number[];
  labels: number[];
  /** Sum of the shards' seconds (work, not wall-clock time). */
  seconds: number;
  backends: string[];
}

/** z for a two-sided 95 % interval. */
const Z95 = 1.959963984540054;

/**
 * Wilson score interval for k successes in n trials (default 95 %). n = 0 gives [0, 1]. Throws on k or n that are
 * not integers with 0 ≤ k ≤ n.
 */
export function wilson(k: number, n: number, z = Z95): { lower: number; upper: number } {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(k) || k < 0 || k > n) {
    throw new Error(`wilson needs integers 0 ≤ k ≤ n, got k=${k}, n=${n}`);
  }
  if (n === 0) return { lower: 0, upper: 1 };
  const p = k / n;
  const z2 = z * z;
  const den = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / den;
  const half = (z / den) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lower: k === 0 ? 0 : Math.max(0, centre - half), upper: k === n ? 1 : Math.min(1, centre + half) };
}

/** k of n with its accuracy and 95 % Wilson interval. */
export function accuracyOf(correct: number, total: number): Accuracy {
  const { lower, upper } = wilson(correct, total);
  return { correct, total, accuracy: total === 0 ? 0 : correct / total, lower, upper };
}

function checkShard(s: SuiteShardResult, i: number): void {
  const where = `shard ${i} (start ${s.start})`;
  if (!Number.isInteger(s.start) || s.start < 0 || !Number.isInteger(s.count) || s.count < 0) {
    throw new Error(`${where}: start and count must be integers ≥ 0, got ${s.start} and ${s.count}`);
  }
  for (const [name, a] of [
    ['labels', s.labels],
    ['cleanPredictions', s.cleanPredictions],
    ['brokenBy', s.brokenBy],
  ] as const) {
    if (a.length !== s.count) throw new Error(`${where}: ${name} has ${a.length} entries for ${s.count} images`);
  }
  s.brokenBy.forEach((b, j) => {
    if (!Number.isInteger(b) || b < WRONG_CLEAN || b >= s.attacks.length) {
      throw new Error(`${where}: brokenBy of image ${s.start + j} is ${b}, expected −2..${s.attacks.length - 1}`);
    }
    const wrong = s.cleanPredictions[j] !== s.labels[j];
    if (wrong !== (b === WRONG_CLEAN)) {
      throw new Error(`${where}: image ${s.start + j} is ${wrong ? 'wrong' : 'right'} on clean but brokenBy is ${b}`);
    }
  });
}

/**
 * Reduces shard results (any order) to one evaluation: clean accuracy, per attack how many it broke and the robust
 * accuracy after it, the per-example worst case, per-class clean and worst case, each with a 95 % Wilson interval.
 * The shards must share one attack list and cover disjoint ranges; gaps are allowed (the images are counted as given).
 */
export function reduceSuite(shards: readonly SuiteShardResult[]): SuiteResult {
  const sorted = [...shards].sort((a, b) => a.start - b.start);
  sorted.forEach(checkShard);
  const attacks = sorted[0]?.attacks ?? [];
  for (let i = 0; i < sorted.length; i++) {
    const s = sorted[i];
    if (s.attacks.length !== attacks.length || s.attacks.some((a, j) => a !== attacks[j])) {
      throw new Error(`shard at start ${s.start} ran attacks [${s.attacks}], others ran [${attacks}]`);
    }
    const prev = sorted[i - 1];
    if (prev && prev.start + prev.count > s.start) {
      throw new Error(
        `shards overlap: [${prev.start}, ${prev.start + prev.count}) and [${s.start}, ${s.start + s.count})`,
      );
    }
  }
  const brokenBy = sorted.flatMap((s) => s.brokenBy);
  const labels = sorted.flatMap((s) => s.labels);
  const n = brokenBy.length;
  const cleanCorrect = brokenBy.filter((b) => b !== WRONG_CLEAN).length;
  const broke = new Array<number>(attacks.length).fill(0);
  for (const b of brokenBy) if (b >= 0) broke[b]++;
  let remaining = cleanCorrect;
  const perAttack = attacks.map((name, i) => {
    remaining -= broke[i];
    return { name, broke: broke[i], after: accuracyOf(remaining, n) };
  });
  const classes = new Map<number, { count: number; clean: number; robust: number }>();
  labels.forEach((label, i) => {
    const c = classes.get(label) ?? { count: 0, clean: 0, robust: 0 };
    c.count++;
    if (brokenBy[i] !== WRONG_CLEAN) c.clean++;
    if (brokenBy[i] === ROBUST) c.robust++;
    classes.set(label, c);
  });
  return {
    count: n,
    attacks: [...attacks],
    clean: accuracyOf(cleanCorrect, n),
    perAttack,
    worstCase: accuracyOf(brokenBy.filter((b) => b === ROBUST).length, n),
    perClass: [...classes.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([label, c]) => ({
        label,
        count: c.count,
        clean: accuracyOf(c.clean, c.count),
        worstCase: accuracyOf(c.robust, c.count),
      })),
    brokenBy,
    labels,
    seconds: sorted.reduce((a, s) => a + s.seconds, 0),
    backends: [...new Set(sorted.map((s) => s.backend))],
  };
}
