/**
 * The suite runner the evaluation shards call, with the tensor core's suite contract (`SuiteAttackFn`): a clean
 * pass, then each attack in order on the points every earlier attack left robust, resumable at the attack and batch
 * it reached. This module carries the PGD attacks of the spec (`custom`) as suite entries; the named suites come
 * from the tensor core's suite module where the build has it (`suiteFor`).
 */
import * as tf from '@tensorflow/tfjs';
import type { SuiteAttackFn } from '../tensor/attacks/contract';
import type { Norm } from '../tensor/attacks/options';
import { attack } from '../tensor/attacks/pgd';
import { batchTensors, checkLabeledImages } from '../tensor/eval/data';
import type { LabeledImages } from '../tensor/eval/data';
import { batchSeed } from '../tensor/eval/evaluate';
import type { EvalAttack } from '../tensor/eval/evaluate';
import { logitsFunction } from '../tensor/models/logits';

/** Per image: −2 wrong on the clean input, −1 robust to every attack, i ≥ 0 the first attack that broke it. */
export const WRONG_CLEAN = -2;
export const ROBUST = -1;

export interface SuiteAttackEntry {
  name: string;
  run: SuiteAttackFn;
}

/** What a heartbeat carries so a restarted shard resumes at the attack and batch it reached. */
export interface SuiteShardState {
  attack: number;
  batch: number;
  brokenBy: number[];
  cleanPredictions: number[];
}

export interface SuiteShardResult {
  start: number;
  count: number;
  labels: number[];
  cleanPredictions: number[];
  brokenBy: number[];
  attacks: string[];
  seconds: number;
  backend: string;
}

export interface RunSuiteShardOptions {
  attacks: SuiteAttackEntry[];
  norm: Norm;
  eps: number;
  start: number;
  count: number;
  batchSize?: number;
  seed?: number;
  resume?: SuiteShardState;
  onProgress?: (
    s: SuiteShardState,
    p: { attack: string; imagesDone: number; imagesTotal: number },
  ) => void | Promise<void>;
  signal?: AbortSignal;
}

/** One of the spec's PGD attacks as a suite entry (it attacks through `model`, at its own ε and steps). */
export function customAttackEntry(model: tf.LayersModel, a: EvalAttack): SuiteAttackEntry {
  return {
    name: a.name,
    run: async (ctx) => {
      const { name: _name, ...options } = a;
      return attack(model, ctx.x, ctx.y, { ...options, seed: ctx.seed });
    },
  };
}

/**
 * Runs `attacks` on images [start, start+count) of `data`, each on the points still robust, `batchSize` at a time;
 * awaits `onProgress` after the clean pass and after every batch with a state `resume` accepts. Seeds derive from
 * the attack and batch index, so a resumed run gives the result of an uninterrupted one. Leaves no tensors behind.
 */
export async function runSuiteShard(
  model: tf.LayersModel,
  data: LabeledImages,
  o: RunSuiteShardOptions,
): Promise<SuiteShardResult> {
  const { attacks, norm, eps, start, count, batchSize = 100, seed = 0, onProgress, signal } = o;
  checkLabeledImages(data, start + count);
  const logits = logitsFunction(model);
  const labels = Array.from(data.labels.subarray(start, start + count));
  const started = performance.now();
  const predict = async (x: tf.Tensor4D) => {
    const p = tf.tidy(() => tf.argMax(logits(x), 1).toInt());
    const v = Array.from((await p.data()) as Int32Array);
    p.dispose();
    return v;
  };
  const initial = o.resume ?? {
    brokenBy: new Array<number>(count).fill(ROBUST),
    cleanPredictions: new Array<number>(count).fill(0),
    attack: 0,
    batch: 0,
  };
  const { attack: firstAttack, batch: firstBatch } = initial;
  const brokenBy = [...initial.brokenBy];
  const cleanPredictions = [...initial.cleanPredictions];
  if (!o.resume) {
    for (let b = 0; b < count; b += batchSize) {
      signal?.throwIfAborted();
      const idx = Array.from({ length: Math.min(batchSize, count - b) }, (_, j) => start + b + j);
      const { x, y } = batchTensors(data, idx);
      y.dispose();
      try {
        (await predict(x)).forEach((p, j) => {
          cleanPredictions[b + j] = p;
          brokenBy[b + j] = p === labels[b + j] ? ROBUST : WRONG_CLEAN;
        });
      } finally {
        x.dispose();
      }
    }
    await onProgress?.(
      { attack: 0, batch: 0, brokenBy: [...brokenBy], cleanPredictions: [...cleanPredictions] },
      { attack: attacks[0]?.name ?? '', imagesDone: 0, imagesTotal: 0 },
    );
  }
  for (let a = firstAttack; a < attacks.length; a++) {
    const robust: number[] = [];
    brokenBy.forEach((b, i) => {
      if (b === ROBUST || b >= a) robust.push(i);
    });
    const batches = Math.ceil(robust.length / batchSize);
    for (let b = a === firstAttack ? firstBatch : 0; b < batches; b++) {
      signal?.throwIfAborted();
      const local = robust.slice(b * batchSize, (b + 1) * batchSize);
      const { x, y } = batchTensors(
        data,
        local.map((i) => start + i),
      );
      let adv: tf.Tensor4D | undefined;
      try {
        adv = await attacks[a].run({
          logits,
          x,
          y,
          norm,
          eps,
          numClasses: data.numClasses,
          seed: batchSeed(seed, a, b),
          signal,
        });
        (await predict(adv)).forEach((p, j) => {
          if (p !== labels[local[j]]) brokenBy[local[j]] = a;
        });
      } finally {
        tf.dispose([x, y, ...(adv ? [adv] : [])]);
      }
      await onProgress?.(
        { attack: a, batch: b + 1, brokenBy: [...brokenBy], cleanPredictions: [...cleanPredictions] },
        {
          attack: attacks[a].name,
          imagesDone: Math.min((b + 1) * batchSize, robust.length),
          imagesTotal: robust.length,
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
