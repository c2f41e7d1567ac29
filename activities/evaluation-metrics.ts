/**
 * From per-example shard results to `Metrics`: clean accuracy, each listed attack on its own, the suite's waterfall,
 * the per-example worst case over every attack that ran, per class and the clean confusion matrix, each accuracy
 * with its 95 % Wilson interval. Pure (no tensors, no I/O): unit-tested on its own.
 */
import type { Example, Interval, Metrics, SanityFlag } from '../schemas/payloads';
import type { ResolvedEvalAttack, Spec } from '../schemas/spec';
import type { ShardFile } from './evaluate-shard';
import { ROBUST, WRONG_CLEAN } from './suite-runner';

/** z for a two-sided 95 % interval. */
const Z95 = 1.959963984540054;

/** Wilson score interval for k of n (95 %); n = 0 gives [0, 1]. */
export function wilson(k: number, n: number): Interval {
  if (n === 0) return { low: 0, high: 1 };
  const p = k / n;
  const z2 = Z95 * Z95;
  const den = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / den;
  const half = (Z95 / den) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { low: k === 0 ? 0 : Math.max(0, centre - half), high: k === n ? 1 : Math.min(1, centre + half) };
}

/** What the extras activity measured beside the shards. */
export interface EvaluationExtras {
  epsCurve: { eps: number; accuracy: number }[];
  examples: Example[];
  sanity: SanityFlag[];
}

export interface BuildMetricsOptions {
  spec: Pick<Spec, 'evaluation' | 'epsilon'>;
  shards: ShardFile[];
  extras: EvaluationExtras;
  classNames?: readonly string[];
  numClasses: number;
  seconds: number;
  backend: Metrics['backend'];
}

/** Reduces the shards (any order; they must tile the images without overlap) to the evaluation's metrics. */
export function buildMetrics(o: BuildMetricsOptions): Metrics {
  const { spec, extras, numClasses } = o;
  const shards = [...o.shards].sort((a, b) => a.start - b.start);
  shards.forEach((s, i) => {
    const prev = shards[i - 1];
    if (prev && prev.start + prev.count !== s.start)
      throw new Error(`shards do not tile the images: [${prev.start}, ${prev.start + prev.count}) then ${s.start}`);
  });
  const suite = shards.flatMap((s) => s.suite.brokenBy);
  const labels = shards.flatMap((s) => s.suite.labels);
  const predictions = shards.flatMap((s) => s.suite.cleanPredictions);
  const listed = spec.evaluation.attacks.map((_, k) => shards.flatMap((s) => s.listed[k].brokenBy));
  const attackNames = shards[0]?.suite.attacks ?? [];
  const n = suite.length;
  const rate = (k: number) => (n === 0 ? 0 : k / n);
  const cleanCorrect = suite.filter((b) => b !== WRONG_CLEAN).length;

  const broke = attackNames.map((_, a) => suite.filter((b) => b === a).length);
  let remaining = cleanCorrect;
  const suiteAttacks = attackNames.map((attack, a) => {
    remaining -= broke[a];
    return { attack, broke: broke[a], accuracyAfter: rate(remaining), interval: wilson(remaining, n) };
  });
  const robustAt = (i: number) => suite[i] === ROBUST && listed.every((l) => l[i] === ROBUST);
  const worst = suite.reduce((acc, _, i) => acc + (robustAt(i) ? 1 : 0), 0);
  const eps = Math.max(
    spec.evaluation.suite === 'custom' ? 0 : spec.epsilon.max,
    ...spec.evaluation.attacks.map((a: ResolvedEvalAttack) => a.eps),
  );

  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  const perClassRobust = new Array<number>(numClasses).fill(0);
  labels.forEach((label, i) => {
    confusion[label][predictions[i]]++;
    if (robustAt(i)) perClassRobust[label]++;
  });
  return {
    clean: rate(cleanCorrect),
    cleanInterval: wilson(cleanCorrect, n),
    robust: spec.evaluation.attacks.map((a, k) => {
      const r = listed[k].filter((b) => b === ROBUST).length;
      return { attack: a.name, eps: a.eps, accuracy: rate(r), interval: wilson(r, n) };
    }),
    suite: spec.evaluation.suite,
    suiteAttacks,
    worstCase: { accuracy: rate(worst), interval: wilson(worst, n), robust: worst, eps },
    sanity: extras.sanity,
    shards: shards.length,
    epsCurve: extras.epsCurve,
    perClass: confusion.map((row, label) => {
      const images = row.reduce((a, v) => a + v, 0);
      return {
        label,
        ...(o.classNames?.[label] ? { name: o.classNames[label] } : {}),
        clean: images === 0 ? 0 : row[label] / images,
        ...(images > 0 ? { robust: perClassRobust[label] / images } : {}),
        images,
      };
    }),
    confusion,
    examples: extras.examples,
    images: n,
    seconds: o.seconds,
    backend: o.backend,
  };
}
