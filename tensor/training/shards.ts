import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random';
import type { TrainingConfig } from './config';
import { recipeLossAndGrads } from './recipe-gradients';
import type { RecipeStep } from './recipe-gradients';

/** One shard of a batch: the examples `[start, end)` and the recipe step they are trained under. */
export interface ShardJob extends RecipeStep {
  start: number;
  end: number;
}

/** What a shard gave back, packed in the model's weight order. */
export interface ShardResult {
  /** The shard's mean loss. */
  loss: number;
  /** The gradient of that loss, the trainable weights' values one after another. */
  grads: Float32Array;
  /** The non-trainable weights (batch-norm moving statistics) after the shard's training-mode pass. */
  stats: Float32Array;
}

/** Runs the shards of one batch against the model's current weights, wherever it runs them; results in shard order. */
export interface ShardRunner {
  run(
    model: tf.LayersModel,
    x: tf.Tensor4D,
    y: tf.Tensor1D,
    config: TrainingConfig,
    jobs: readonly ShardJob[],
  ): Promise<ShardResult[]>;
}

/**
 * The shards of each batch for `threads` (`compute.threads`, `--threads`): a fixed count is itself; `auto` keeps the
 * count of the checkpoint a run resumes from (the shards change the result, the threads do not), else one shard
 * per thread here (`here`).
 */
export function shardsFor(threads: number | 'auto', here: number, checkpointShards?: number): number {
  if (threads !== 'auto') return threads;
  return checkpointShards ?? here;
}

/** Contiguous shards as even as possible, larger ones first; none empty (fewer than `shards` for a tiny batch). */
export function shardBounds(n: number, shards: number): [number, number][] {
  const out: [number, number][] = [];
  const base = Math.floor(n / shards);
  const extra = n % shards;
  let start = 0;
  for (let k = 0; k < shards && start < n; k++) {
    const end = start + base + (k < extra ? 1 : 0);
    out.push([start, end]);
    start = end;
  }
  return out;
}

/** Shard 0 uses `seed` itself, shard k > 0 the k-th draw of `Rng.fromSeed(seed)`. */
export function shardSeeds(seed: number, shards: number): number[] {
  const rng = Rng.fromSeed(seed);
  return Array.from({ length: shards }, (_, k) => (k === 0 ? seed : rng.seed()));
}

/**
 * The shards of a batch of `n` examples whose first `clean` stay clean, trained at `eps` with the batch's `seed`:
 * each shard keeps the clean examples that fall in it and gets its own seed.
 */
export function shardJobs(n: number, shards: number, step: RecipeStep): ShardJob[] {
  const seeds = shardSeeds(step.seed, shards);
  return shardBounds(n, shards).map(([start, end], k) => ({
    start,
    end,
    eps: step.eps,
    seed: seeds[k],
    clean: Math.max(0, Math.min(step.clean - start, end - start)),
  }));
}

/**
 * The batch's loss, gradient and batch-norm statistics from its shards': each weighted by its share of the
 * batch, so the gradient is that of the batch's mean loss. Summed in float64 in shard order, so every runner
 * that returns the same shard results gives the same bits.
 */
export function combineShards(
  jobs: readonly ShardJob[],
  results: readonly ShardResult[],
): { loss: number; grads: Float32Array; stats: Float32Array } {
  const n = jobs.reduce((a, j) => a + j.end - j.start, 0);
  const P = results[0].grads.length;
  const S = results[0].stats.length;
  const grads = new Float64Array(P);
  const stats = new Float64Array(S);
  let loss = 0;
  results.forEach((r, k) => {
    const w = (jobs[k].end - jobs[k].start) / n;
    loss += w * r.loss;
    for (let j = 0; j < P; j++) grads[j] += w * r.grads[j];
    for (let j = 0; j < S; j++) stats[j] += w * r.stats[j];
  });
  return { loss, grads: Float32Array.from(grads), stats: Float32Array.from(stats) };
}

/** The values of `weights`, one after another, as one Float32Array (one read from the backend). */
export async function packWeights(weights: readonly tf.LayerVariable[]): Promise<Float32Array> {
  if (weights.length === 0) return new Float32Array(0);
  const packed = tf.tidy(() => tf.concat(weights.map((w) => tf.reshape(w.read(), [-1]))));
  try {
    return (await packed.data()) as Float32Array;
  } finally {
    packed.dispose();
  }
}

/** Elements of a tensor of `shape` (a weight's unknown dimensions count as 1). */
export const elements = (shape: readonly (number | null)[]) => shape.reduce((a: number, b) => a * (b ?? 1), 1);

/** Packed values (from {@link packWeights} or {@link combineShards}) cut into tensors of `shapes`; the caller owns them. */
export function unpackTensors(shapes: readonly (readonly number[])[], values: Float32Array): tf.Tensor[] {
  if (shapes.length === 0) return [];
  return tf.tidy(() =>
    tf.split(tf.tensor1d(values), shapes.map(elements)).map((part, i) => tf.reshape(part, shapes[i] as number[])),
  );
}

/** Writes packed values (from {@link packWeights} or {@link combineShards}) back into `weights`. */
export function unpackWeights(weights: readonly tf.LayerVariable[], values: Float32Array): void {
  const parts = unpackTensors(
    weights.map((w) => w.shape as number[]),
    values,
  );
  weights.forEach((w, i) => w.write(parts[i]));
  tf.dispose(parts);
}

/**
 * The shards of one batch, each in turn on this thread's backend: every shard starts from the same batch-norm
 * statistics, as it would on its own worker thread.
 */
export async function runShard(
  model: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  config: TrainingConfig,
  job: ShardJob,
): Promise<ShardResult> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const xs = x.slice([job.start, 0, 0, 0], [job.end - job.start, -1, -1, -1]);
  const ys = y.slice([job.start], [job.end - job.start]);
  try {
    const { value, grads } = recipeLossAndGrads(model, vars, xs, ys, config, job);
    const packed = tf.tidy(() => tf.concat(vars.map((v) => tf.reshape(grads[v.name], [-1]))));
    tf.dispose(Object.values(grads));
    try {
      const loss = (await value.data())[0];
      return {
        loss,
        grads: (await packed.data()) as Float32Array,
        stats: await packWeights(model.nonTrainableWeights),
      };
    } finally {
      tf.dispose([value, packed]);
    }
  } finally {
    tf.dispose([xs, ys]);
  }
}

/**
 * Runs the shards one after another on this thread, each from the same batch-norm statistics: the same results as
 * a worker pool, on one core. Leaves the model's statistics as the last shard left them.
 */
export const inProcessRunner: ShardRunner = {
  async run(model, x, y, config, jobs) {
    const start = await packWeights(model.nonTrainableWeights);
    const out: ShardResult[] = [];
    for (const job of jobs) {
      unpackWeights(model.nonTrainableWeights, start);
      out.push(await runShard(model, x, y, config, job));
    }
    return out;
  },
};
