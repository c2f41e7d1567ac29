/**
 * From per-example shard results to `Metrics`: clean accuracy, each listed attack on its own, the suite's waterfall,
 * the per-example worst case over every attack that ran, per class and the clean confusion matrix, each accuracy
 * with its 95 % Wilson interval. Pure (no tensors, no I/O): unit-tested on its own.
 */
import type { Example, Interval, Metrics, SanityFlag } from '../schemas/payloads';
import type { ResolvedEvalAttack, Spec } from '../schemas/spec';
import type { ShardFile } from './evaluate-shard';
import { ROBUST, WRONG_CLEAN, wilson } from '../tensor/eval/reduce';

/** The 95 % Wilson score interval of k of n, as the payloads carry it. */
export function interval95(k: number, n: number): Interval {
  const { lower, upper } = wilson(k, n);
  return { low: lower, high: upper };
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
    return { attack, broke: broke[a], accuracyAfter: rate(remaining), interval: interval95(remaining, n) };
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
    cleanInterval: interval95(cleanCorrect, n),
    robust: spec.evaluation.attacks.map((a, k) => {
      const r = listed[k].filter((b) => b === ROBUST).length;
      return { attack: a.name, eps: a.eps, accuracy: rate(r), interval: interval95(r, n) };
    }),
    suite: spec.evaluation.suite,
    suiteAttacks,
    worstCase: { accuracy: rate(worst), interval: interval95(worst, n), robust: worst, eps },
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
