import * as tf from '@tensorflow/tfjs';
import { attack } from '../attacks/pgd';
import { resolveAttack } from '../attacks/options';
import type { AttackMethod, Norm } from '../attacks/options';
import { logitsFunction } from '../models/logits';
import { validateModelForDataset } from '../models/validate';
import { batchTensors, checkLabeledImages, span } from './data';
import type { LabeledImages } from './data';

/** One attack of an evaluation; `name` labels it in the report (e.g. "pgd20-linf-8/255"). */
export interface EvalAttack {
  name: string;
  /** 'pgd' (default) or 'fgsm'. */
  method?: AttackMethod;
  norm: Norm;
  eps: number;
  /** Default 10 (PGD). */
  steps?: number;
  /** Default 1. */
  restarts?: number;
  /** Absolute step size. Default 2.5·ε/steps. */
  stepSize?: number;
  /** Default true for PGD. */
  randomStart?: boolean;
  /** Default: the evaluation's seed. */
  seed?: number;
}

/** Robust accuracy under PGD at each ε, with step size `stepFraction`·ε. */
export interface EpsCurveSpec {
  norm: Norm;
  steps: number;
  epsilons: number[];
  /** Default 1. */
  restarts?: number;
  /** Step size as a fraction of each ε. Default 2.5/steps. */
  stepFraction?: number;
}

export interface EvaluateOptions {
  attacks?: EvalAttack[];
  epsCurve?: EpsCurveSpec;
  /** Images per batch. Default 100. */
  batchSize?: number;
  /** Evaluate only the first `limit` images. Default: all. */
  limit?: number;
  /** Base seed of the random starts; each attack and batch derives its own from it. Default 0. */
  seed?: number;
  /** Called after every batch with images done and total; awaited, so it may heartbeat or write progress. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
  /** Checked before every batch; an aborted signal rejects with its reason. */
  signal?: AbortSignal;
}

export interface AttackResult {
  name: string;
  method: AttackMethod;
  norm: Norm;
  eps: number;
  steps: number;
  restarts: number;
  stepSize: number;
  randomStart: boolean;
  /** Images correct on the clean input AND on the adversarial one. */
  robustCorrect: number;
  robustAccuracy: number;
  /** Of the cleanly correct images, the fraction the attack fooled (0 when none are correct). */
  attackSuccessRate: number;
}

export interface EpsCurvePoint {
  eps: number;
  stepSize: number;
  robustCorrect: number;
  robustAccuracy: number;
}

/** The result of {@link evaluate}: plain numbers and arrays, safe for JSON and Temporal payloads. */
export interface EvalReport {
  count: number;
  numClasses: number;
  batchSize: number;
  cleanCorrect: number;
  cleanAccuracy: number;
  attacks: AttackResult[];
  epsCurve: { norm: Norm; steps: number; restarts: number; points: EpsCurvePoint[] } | null;
  /** Images per true class. */
  perClassCount: number[];
  /** Clean accuracy per true class; null for a class with no images. */
  perClassAccuracy: (number | null)[];
  /** Robust accuracy per true class under each attack (null for a class with no images). */
  perClassRobust: { attack: string; accuracy: (number | null)[] }[];
  /** Clean confusion matrix, `confusion[trueClass][predictedClass]`. */
  confusion: number[][];
  /** Model check warnings (e.g. a softmax output). */
  warnings: string[];
  backend: string;
  seconds: number;
  examplesPerSecond: number;
}

/** A 32-bit seed for attack `k` on batch `b` (stable, so a retried evaluation repeats exactly). */
export function batchSeed(seed: number, k: number, b: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [k, b]) {
    h = Math.imul(h ^ v, 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

/**
 * Clean accuracy, robust accuracy per attack and along an ε curve, per-class accuracy and the clean confusion
 * matrix of `model` on `data`. Copies one batch at a time into tensors and awaits each batch's numbers before the
 * next, so callers can heartbeat (`onProgress`) and cancel (`signal`). An image counts as robust only if the model
 * classifies it correctly both clean and under attack. Attacks use the true labels. Leaves no tensors behind.
 */
export async function evaluate(
  model: tf.LayersModel,
  data: LabeledImages,
  options: EvaluateOptions = {},
): Promise<EvalReport> {
  const { attacks = [], epsCurve, batchSize = 100, seed = 0, onProgress, signal } = options;
  const total = Math.min(options.limit ?? data.count, data.count);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`batchSize must be an integer ≥ 1, got ${batchSize}`);
  if (!Number.isInteger(total) || total < 0) throw new Error(`limit must be an integer ≥ 0, got ${options.limit}`);
  checkLabeledImages(data, total);
  const { warnings } = validateModelForDataset(model, data);
  const names = new Set<string>();
  for (const a of attacks) {
    if (names.has(a.name)) throw new Error(`attack name '${a.name}' appears twice`);
    names.add(a.name);
  }
  const resolved = attacks.map((a) => resolveAttack({ ...a, seed: a.seed ?? seed }));
  const curve = epsCurve
    ? epsCurve.epsilons.map((eps) =>
        resolveAttack({
          method: 'pgd',
          norm: epsCurve.norm,
          eps,
          steps: epsCurve.steps,
          restarts: epsCurve.restarts ?? 1,
          stepSize: (epsCurve.stepFraction ?? 2.5 / Math.max(epsCurve.steps, 1)) * eps,
          seed,
        }),
      )
    : [];
  const runs = [...resolved, ...curve];
  const logits = logitsFunction(model);
  const k = data.numClasses;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const robust = new Array<number>(runs.length).fill(0);
  const classRobust = resolved.map(() => new Array<number>(k).fill(0));
  const started = performance.now();

  for (let start = 0, b = 0; start < total; start += batchSize, b++) {
    signal?.throwIfAborted();
    const size = Math.min(batchSize, total - start);
    const { x, y } = batchTensors(data, span(start, size));
    const held: tf.Tensor[] = [x, y];
    let packed: tf.Tensor1D;
    try {
      const cleanPred = tf.tidy(() => tf.argMax(logits(x), 1).toInt() as tf.Tensor1D);
      const cleanOk = tf.tidy(() => tf.equal(cleanPred, y));
      held.push(cleanPred, cleanOk);
      const counts = runs.map((a, i) => {
        if (a.eps === 0) {
          const ok = tf.tidy(() =>
            i < resolved.length ? tf.cast(cleanOk, 'int32') : tf.sum(tf.cast(cleanOk, 'int32')),
          );
          return held[held.push(ok) - 1];
        }
        const adv = attack(model, x, y, { ...a, seed: batchSeed(a.seed, i, b) });
        try {
          // The spec's attacks keep one flag per image (for per-class robust accuracy); ε-curve points a count.
          const perImage = i < resolved.length;
          const ok = tf.tidy(() => {
            const hit = tf.cast(tf.logicalAnd(cleanOk, tf.equal(tf.argMax(logits(adv), 1), y)), 'int32');
            return perImage ? hit : tf.sum(hit);
          });
          held.push(ok);
          return ok;
        } finally {
          adv.dispose();
        }
      });
      // One read per batch: [clean predictions..., robust flags per image of each attack..., count per ε point...].
      packed = tf.tidy(() => tf.concat([cleanPred, ...counts.map((c) => tf.reshape(c, [-1]))]) as tf.Tensor1D);
    } finally {
      tf.dispose(held);
    }
    const values = await packed.data();
    packed.dispose();
    for (let i = 0; i < size; i++) confusion[data.labels[start + i]][values[i]]++;
    let at = size;
    for (let r = 0; r < runs.length; r++) {
      if (r < resolved.length) {
        for (let i = 0; i < size; i++) {
          if (values[at + i] === 0) continue;
          robust[r]++;
          classRobust[r][data.labels[start + i]]++;
        }
        at += size;
      } else robust[r] += values[at++];
    }
    await onProgress?.(start + size, total);
  }

  const seconds = (performance.now() - started) / 1000;
  const perClassCount = confusion.map((row) => row.reduce((a, v) => a + v, 0));
  const cleanCorrect = confusion.reduce((a, row, c) => a + row[c], 0);
  const frac = (n: number) => (total === 0 ? 0 : n / total);
  return {
    count: total,
    numClasses: k,
    batchSize,
    cleanCorrect,
    cleanAccuracy: frac(cleanCorrect),
    attacks: resolved.map((a, i) => ({
      name: attacks[i].name,
      method: a.method,
      norm: a.norm,
      eps: a.eps,
      steps: a.steps,
      restarts: a.restarts,
      stepSize: a.stepSize,
      randomStart: a.randomStart,
      robustCorrect: robust[i],
      robustAccuracy: frac(robust[i]),
      attackSuccessRate: cleanCorrect === 0 ? 0 : (cleanCorrect - robust[i]) / cleanCorrect,
    })),
    epsCurve: epsCurve
      ? {
          norm: epsCurve.norm,
          steps: epsCurve.steps,
          restarts: epsCurve.restarts ?? 1,
          points: curve.map((a, j) => ({
            eps: a.eps,
            stepSize: a.stepSize,
            robustCorrect: robust[resolved.length + j],
            robustAccuracy: frac(robust[resolved.length + j]),
          })),
        }
      : null,
    perClassCount,
    perClassAccuracy: confusion.map((row, c) => (perClassCount[c] === 0 ? null : row[c] / perClassCount[c])),
    perClassRobust: resolved.map((_, i) => ({
      attack: attacks[i].name,
      accuracy: classRobust[i].map((n, c) => (perClassCount[c] === 0 ? null : n / perClassCount[c])),
    })),
    confusion,
    warnings,
    backend: tf.getBackend(),
    seconds,
    examplesPerSecond: seconds > 0 ? total / seconds : 0,
  };
}
