import * as tf from '@tensorflow/tfjs';
import { apgd, apgdTargeted } from '../attacks/apgd';
import { fabTargeted } from '../attacks/fab';
import { squareAttack } from '../attacks/square';
import type { SuiteAttackFn } from '../attacks/contract';
import type { Norm } from '../attacks/options';
import { attackLogits } from '../attacks/pgd';
import { logitsFunction } from '../models/logits';
import { validateModelForDataset } from '../models/validate';
import { batchTensors, checkLabeledImages } from './data';
import type { LabeledImages } from './data';
import type { EvalAttack } from './evaluate';
import { eventLoopYielder } from '../event-loop';
import { batchSeed } from './evaluate';
import { ROBUST, WRONG_CLEAN } from './reduce';
import type { SuiteShardResult } from './reduce';

export type { SuiteShardResult } from './reduce';

/**
 * Which attacks an evaluation runs: `standard` is AutoAttack's standard suite, `plus` its extended one, `fast` a
 * nightly subset (APGD-CE, then APGD-T over 3 targets), `custom` an explicit list (e.g. the spec's PGD attacks).
 */
export type SuiteName = 'standard' | 'plus' | 'fast' | 'custom';
export const SUITE_NAMES: readonly SuiteName[] = ['standard', 'plus', 'fast', 'custom'];

/** One attack of a suite, under the name the results carry. */
export interface SuiteAttackEntry {
  name: string;
  run: SuiteAttackFn;
  /**
   * About how much the attack costs per image, in gradient evaluations (a forward pass alone counts a third):
   * weighs the attacks of a suite against each other in progress reports (default 1). Never affects a result.
   */
  work?: number;
}

/** FAB's iteration: a gradient plus a projection per image on the CPU, about twice an APGD iteration here. */
const FAB_WORK = 2;

/**
 * The attacks of a named suite, in the order they run (each on the points all earlier ones left robust):
 * - `standard`: APGD-CE (100 iterations), APGD-T (targeted DLR, 9 targets × 100 iterations), FAB-T (9 targets ×
 *   100 iterations), Square (5000 queries);
 * - `plus`: AutoAttack's plus order, APGD-CE and APGD-DLR with 5 restarts each, Square (5000 queries), APGD-T and
 *   FAB-T (9 targets each); the reference's untargeted FAB (5 restarts) between APGD-DLR and Square is not
 *   implemented here;
 * - `fast`: APGD-CE (100 iterations), APGD-T over 3 targets.
 * Target counts are capped at numClasses − 1; APGD-T falls back to targeted CE below 4 classes and APGD-DLR is
 * left out below 3 (DLR needs the third-highest logit).
 */
export function suiteAttacks(
  suite: Exclude<SuiteName, 'custom'>,
  o: { norm: Norm; numClasses: number },
): SuiteAttackEntry[] {
  const { norm, numClasses } = o;
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`suite norm must be 'linf' or 'l2', got '${String(norm)}'`);
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new Error(`suite needs numClasses ≥ 2, got ${numClasses}`);
  }
  const targets = (k: number) => Math.min(k, numClasses - 1);
  switch (suite) {
    case 'standard':
      return [
        { name: 'apgd-ce', run: apgd({ loss: 'ce', iterations: 100 }), work: 100 },
        { name: 'apgd-t', run: apgdTargeted({ targets: targets(9), iterations: 100 }), work: targets(9) * 100 },
        {
          name: 'fab-t',
          run: fabTargeted({ targets: targets(9), iterations: 100 }),
          work: FAB_WORK * targets(9) * 100,
        },
        { name: 'square', run: squareAttack({ queries: 5000 }), work: 5000 / 3 },
      ];
    case 'plus':
      return [
        { name: 'apgd-ce', run: apgd({ loss: 'ce', iterations: 100, restarts: 5 }), work: 500 },
        ...(numClasses >= 3
          ? [{ name: 'apgd-dlr', run: apgd({ loss: 'dlr', iterations: 100, restarts: 5 }), work: 500 }]
          : []),
        { name: 'square', run: squareAttack({ queries: 5000 }), work: 5000 / 3 },
        { name: 'apgd-t', run: apgdTargeted({ targets: targets(9), iterations: 100 }), work: targets(9) * 100 },
        {
          name: 'fab-t',
          run: fabTargeted({ targets: targets(9), iterations: 100 }),
          work: FAB_WORK * targets(9) * 100,
        },
      ];
    case 'fast':
      return [
        { name: 'apgd-ce', run: apgd({ loss: 'ce', iterations: 100 }), work: 100 },
        { name: 'apgd-t', run: apgdTargeted({ targets: targets(3), iterations: 100 }), work: targets(3) * 100 },
      ];
    default:
      throw new Error(`unknown suite '${String(suite)}', expected one of standard, plus, fast`);
  }
}

/**
 * One of today's PGD/FGSM attacks as a suite attack (for `custom`). Its norm must be the suite's and its ε at most
 * the suite's, since the runner checks every image against the suite's ball.
 */
export function customAttackEntry(a: EvalAttack): SuiteAttackEntry {
  return {
    name: a.name,
    work: (a.method === 'fgsm' ? 1 : (a.steps ?? 10)) * (a.restarts ?? 1),
    run: async (ctx) => {
      if (a.norm !== ctx.norm || a.eps > ctx.eps) {
        throw new Error(
          `attack '${a.name}' (${a.norm}, ε=${a.eps}) does not fit the suite's threat model (${ctx.norm}, ε=${ctx.eps})`,
        );
      }
      const { name: _name, seed: _seed, ...options } = a;
      return attackLogits(ctx.logits, ctx.numClasses, ctx.x, ctx.y, { ...options, seed: ctx.seed });
    },
  };
}

/** Where a shard stands: what a heartbeat carries so a restarted shard resumes at the attack and batch it reached. */
export interface SuiteShardState {
  /** Index of the attack in progress. */
  attack: number;
  /** Batches of that attack already done (batches are formed from the points robust when the attack began). */
  batch: number;
  /** Per image of the shard, as in {@link SuiteShardResult.brokenBy}. */
  brokenBy: number[];
  /** Predicted class per clean image of the shard. */
  cleanPredictions: number[];
}

export interface SuiteProgress {
  attack: string;
  /** Images this attack has been run on so far, of those robust when it began. */
  imagesDone: number;
  imagesTotal: number;
  /** Share of the suite's work done, the attacks weighed by their `work` (0 to 1). */
  fraction: number;
}

export interface RunSuiteShardOptions {
  attacks: SuiteAttackEntry[];
  norm: Norm;
  /** Radius of the threat model in pixel units. */
  eps: number;
  /** First image of the shard in `data`. */
  start: number;
  /** Images in the shard. */
  count: number;
  /** Images per attack call (default 100). */
  batchSize?: number;
  /** Base seed; attack i on batch b draws from batchSeed(seed, i, b), so a resumed shard repeats exactly (default 0). */
  seed?: number;
  /** A state from an earlier `onProgress` of the same shard, options and model. */
  resume?: SuiteShardState;
  /** Awaited after the clean pass and after every attack batch, with a state to resume from. */
  onProgress?: (s: SuiteShardState, p: SuiteProgress) => void | Promise<void>;
  /** Checked between batches (and passed to the attacks); an aborted signal rejects with its reason. */
  signal?: AbortSignal;
  /**
   * Told, between the iterations of an attack, how far the suite has got: for progress reports inside a long batch,
   * where `onProgress` (which carries the resume state) waits for the batch to end. Called often: keep it cheap.
   */
  onWork?: (p: SuiteProgress) => void;
}

/** An attack returned an image outside the threat model (or NaN, or a wrong shape): a bug, never a result. */
export class SuiteVerificationError extends Error {
  override readonly name = 'SuiteVerificationError';
}

/** Distances an adversarial batch may exceed ε by: float32 rounding (the L2 norm sums over every pixel). */
function tolerance(norm: Norm, eps: number): number {
  return norm === 'linf' ? 1e-6 : 1e-6 + 1e-5 * eps;
}

/**
 * Checks every adversarial image against its clean one (inside the ε-ball within {@link tolerance}, inside [0,1],
 * finite); throws a {@link SuiteVerificationError} naming the attack, the image and the numbers.
 */
function verify(
  name: string,
  adv: Float32Array,
  clean: Float32Array,
  per: number,
  norm: Norm,
  eps: number,
  images: number[],
): void {
  const limit = eps + tolerance(norm, eps);
  for (let i = 0; i < images.length; i++) {
    let dist = 0;
    for (let k = i * per, end = k + per; k < end; k++) {
      const v = adv[k];
      if (!(v >= 0 && v <= 1)) {
        throw new SuiteVerificationError(
          `attack '${name}' returned pixel value ${v} for image ${images[i]}, outside [0,1]`,
        );
      }
      const d = Math.abs(v - clean[k]);
      dist = norm === 'linf' ? Math.max(dist, d) : dist + d * d;
    }
    if (norm === 'l2') dist = Math.sqrt(dist);
    if (dist > limit) {
      throw new SuiteVerificationError(
        `attack '${name}' moved image ${images[i]} by ${dist} in ${norm === 'linf' ? 'L∞' : 'L2'}, beyond ε = ${eps}`,
      );
    }
  }
}

function checkOptions(
  data: LabeledImages,
  o: RunSuiteShardOptions,
): Required<Pick<RunSuiteShardOptions, 'batchSize' | 'seed'>> {
  const { attacks, norm, eps, start, count, batchSize = 100, seed = 0 } = o;
  if (!Array.isArray(attacks)) throw new Error('runSuiteShard: attacks must be an array of { name, run }');
  const names = new Set<string>();
  for (const a of attacks) {
    if (typeof a?.name !== 'string' || a.name === '' || typeof a.run !== 'function') {
      throw new Error(`runSuiteShard: every attack needs a name and a run function, got ${JSON.stringify(a?.name)}`);
    }
    if (names.has(a.name)) throw new Error(`runSuiteShard: attack name '${a.name}' appears twice`);
    names.add(a.name);
  }
  if (norm !== 'linf' && norm !== 'l2')
    throw new Error(`runSuiteShard: norm must be 'linf' or 'l2', got '${String(norm)}'`);
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new Error(`runSuiteShard: eps must be a finite number ≥ 0, got ${eps}`);
  }
  if (!Number.isInteger(start) || start < 0 || !Number.isInteger(count) || count < 0 || start + count > data.count) {
    throw new Error(`runSuiteShard: images [${start}, ${start}+${count}) do not fit a dataset of ${data.count}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`runSuiteShard: batchSize must be an integer ≥ 1, got ${batchSize}`);
  if (!Number.isInteger(seed)) throw new Error(`runSuiteShard: seed must be an integer, got ${seed}`);
  const r = o.resume;
  if (r) {
    const ok =
      Number.isInteger(r.attack) &&
      r.attack >= 0 &&
      r.attack <= attacks.length &&
      Number.isInteger(r.batch) &&
      r.batch >= 0 &&
      Array.isArray(r.brokenBy) &&
      r.brokenBy.length === count &&
      Array.isArray(r.cleanPredictions) &&
      r.cleanPredictions.length === count &&
      r.brokenBy.every((b) => Number.isInteger(b) && b >= WRONG_CLEAN && b < attacks.length);
    if (!ok) {
      throw new Error(
        `runSuiteShard: resume state does not fit this shard (${count} images, ${attacks.length} attacks): ` +
          `attack ${r.attack}, batch ${r.batch}, ${r.brokenBy?.length} flags`,
      );
    }
  }
  return { batchSize, seed };
}

/**
 * Runs a suite on images [start, start+count) of `data`, AutoAttack's way: a clean pass, then each attack in order
 * on the points every earlier attack left robust (re-batched, `batchSize` at a time). Every adversarial batch is
 * verified (ε-ball, [0,1], finite) and its predictions recomputed here: an attack's own claim is never trusted.
 * Awaits `onProgress` after the clean pass and after each batch with a state that `resume` accepts; a resumed run
 * gives the same result as an uninterrupted one (seeds derive from attack and batch index). Leaves no tensors behind.
 */
export async function runSuiteShard(
  model: tf.LayersModel,
  data: LabeledImages,
  o: RunSuiteShardOptions,
): Promise<SuiteShardResult> {
  const { batchSize, seed } = checkOptions(data, o);
  const { attacks, norm, eps, start, count, onProgress, onWork, signal } = o;
  const yieldNow = eventLoopYielder();
  const weights = attacks.map((e) => e.work ?? 1);
  const total = weights.reduce((s, w) => s + w, 0);
  /** The suite's share done when attack `a` is `inAttack` of the way through its images. */
  const fractionAt = (a: number, inAttack: number) =>
    total > 0 ? Math.min(1, (weights.slice(0, a).reduce((s, w) => s + w, 0) + weights[a] * inAttack) / total) : 1;
  checkLabeledImages(data, start + count);
  validateModelForDataset(model, data);
  const logits = logitsFunction(model);
  const numClasses = data.numClasses;
  const per = data.height * data.width * data.channels;
  const labels = Array.from(data.labels.subarray(start, start + count));
  const started = performance.now();
  let brokenBy: number[];
  let cleanPredictions: number[];
  let firstAttack = 0;
  let firstBatch = 0;

  const predict = async (x: tf.Tensor4D): Promise<Int32Array> => {
    const p = tf.tidy(() => tf.argMax(logits(x), 1).toInt());
    const v = (await p.data()) as Int32Array;
    p.dispose();
    return v;
  };

  if (o.resume) {
    brokenBy = [...o.resume.brokenBy];
    cleanPredictions = [...o.resume.cleanPredictions];
    firstAttack = o.resume.attack;
    firstBatch = o.resume.batch;
  } else {
    brokenBy = new Array<number>(count);
    cleanPredictions = new Array<number>(count);
    for (let b = 0; b < count; b += batchSize) {
      signal?.throwIfAborted();
      const idx = range(start + b, Math.min(batchSize, count - b));
      const { x, y } = batchTensors(data, idx);
      y.dispose();
      try {
        const pred = await predict(x);
        pred.forEach((p, j) => {
          cleanPredictions[b + j] = p;
          brokenBy[b + j] = p === labels[b + j] ? ROBUST : WRONG_CLEAN;
        });
      } finally {
        x.dispose();
      }
    }
    await onProgress?.(
      { attack: 0, batch: 0, brokenBy: [...brokenBy], cleanPredictions: [...cleanPredictions] },
      { attack: attacks[0]?.name ?? '', imagesDone: 0, imagesTotal: 0, fraction: 0 },
    );
  }

  for (let a = firstAttack; a < attacks.length; a++) {
    const entry = attacks[a];
    // The points robust when attack a began: not wrong on clean, not broken by an earlier attack.
    const robust: number[] = [];
    brokenBy.forEach((b, i) => {
      if (b === ROBUST || b >= a) robust.push(i);
    });
    const batches = Math.ceil(robust.length / batchSize);
    for (let b = a === firstAttack ? firstBatch : 0; b < batches; b++) {
      signal?.throwIfAborted();
      const local = robust.slice(b * batchSize, (b + 1) * batchSize);
      const images = local.map((i) => start + i);
      const { x, y } = batchTensors(data, images);
      let adv: tf.Tensor4D | undefined;
      try {
        const onAttackProgress = async (done: number) => {
          const inAttack = (b + Math.min(1, Math.max(0, done))) / batches;
          onWork?.({
            attack: entry.name,
            imagesDone: Math.min(Math.floor(inAttack * robust.length), robust.length),
            imagesTotal: robust.length,
            fraction: fractionAt(a, inAttack),
          });
          await yieldNow();
        };
        adv = await entry.run({
          logits,
          x,
          y,
          norm,
          eps,
          numClasses,
          seed: batchSeed(seed, a, b),
          signal,
          onProgress: onAttackProgress,
        });
        if (!(adv instanceof tf.Tensor) || adv.shape.join() !== x.shape.join()) {
          throw new SuiteVerificationError(
            `attack '${entry.name}' returned ${adv instanceof tf.Tensor ? `shape [${adv.shape}]` : 'no tensor'} for images [${x.shape}]`,
          );
        }
        const [advValues, cleanValues] = (await Promise.all([adv.data(), x.data()])) as [Float32Array, Float32Array];
        verify(entry.name, advValues, cleanValues, per, norm, eps, images);
        const pred = await predict(adv);
        pred.forEach((p, j) => {
          if (p !== labels[local[j]]) brokenBy[local[j]] = a;
        });
      } finally {
        x.dispose();
        y.dispose();
        adv?.dispose();
      }
      await onProgress?.(
        { attack: a, batch: b + 1, brokenBy: [...brokenBy], cleanPredictions: [...cleanPredictions] },
        {
          attack: entry.name,
          imagesDone: Math.min((b + 1) * batchSize, robust.length),
          imagesTotal: robust.length,
          fraction: fractionAt(a, (b + 1) / batches),
        },
      );
    }
  }

  return {
    start,
    count,
    labels,
    cleanPredictions,
    brokenBy,
    attacks: attacks.map((a) => a.name),
    seconds: (performance.now() - started) / 1000,
    backend: tf.getBackend(),
  };
}

function range(start: number, size: number): number[] {
  return Array.from({ length: size }, (_, i) => start + i);
}
