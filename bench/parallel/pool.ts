import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import { checkBatch } from '../../tensor/attacks';
import type { AttackOptions } from '../../tensor/attacks';
import type { BackendName } from '../../tensor/backend';
import { Rng } from '../../tensor/random';
import type { FromWorker, Job, SharedBatch, ToWorker, WorkerInit } from './protocol';

export interface DataParallelOptions {
  /** Worker threads, each with its own backend and its own copy of the model. Default 2. */
  workers?: number;
  /** The tfjs backend each worker starts with `initBackend`. Default 'wasm' (one thread per op under Node). */
  backend?: BackendName;
}

/** The gradient of a batch: the shard gradients averaged by shard size, so it equals the full-batch gradient. */
export interface BatchGradients {
  /** One tensor per trainable weight, in `model.trainableWeights` order; the caller disposes them. */
  grads: tf.Tensor[];
  /** Mean cross-entropy over the batch (on the adversarial examples when an attack was given). */
  loss: number;
}

interface Deferred<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

type Reply = Exclude<FromWorker, { type: 'ready' } | { type: 'error' }>;

/** Trainable weights first, then the rest: the packing order of the shared weights and gradients. */
const ordered = (model: tf.LayersModel) => [...model.trainableWeights, ...model.nonTrainableWeights];
const size = (shape: readonly (number | null)[]) => shape.reduce((a: number, b) => a * (b ?? 1), 1);

/**
 * Starts bench/parallel/worker.ts in a worker thread under tsx. Loader hooks registered with `--import tsx` do
 * not reach worker threads on Node 20, so the thread's entry is a two-line ES module that registers tsx first.
 */
function spawnWorker(init: WorkerInit): Worker {
  const entry = new URL('./worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), { workerData: init });
}

/** One worker thread and its one job in flight. */
class Thread {
  readonly ready: Promise<void>;
  readonly exited: Promise<number>;
  private waiting?: Deferred<Reply>;
  private dead?: Error;
  /** Whether this thread holds the pool's current shared batch buffers. */
  hasBatch = false;

  constructor(
    readonly worker: Worker,
    readonly index: number,
  ) {
    let started!: Deferred<void>;
    this.ready = new Promise((resolve, reject) => (started = { resolve, reject }));
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') return started.resolve();
      if (m.type === 'error' && m.id === undefined) {
        return started.reject(new Error(`data-parallel worker ${index} did not start: ${m.message}`));
      }
      const waiting = this.waiting;
      this.waiting = undefined;
      if (m.type === 'error') waiting?.reject(new Error(`data-parallel worker ${index}: ${m.message}`));
      else waiting?.resolve(m);
    });
    const die = (err: Error) => {
      this.dead ??= err;
      started.reject(err);
      this.waiting?.reject(err);
      this.waiting = undefined;
    };
    worker.on('error', (err) => die(new Error(`data-parallel worker ${index} failed: ${err.message}`)));
    this.exited = new Promise((resolve) =>
      worker.once('exit', (code) => {
        die(new Error(`data-parallel worker ${index} exited (code ${code})`));
        resolve(code);
      }),
    );
  }

  run(job: Job): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage({ type: 'job', job } satisfies ToWorker);
    });
  }
}

/**
 * A pool of worker threads for data-parallel adversarial training and evaluation of one model: each batch is cut
 * into contiguous shards, one per worker, and each worker attacks its shard with {@link attack} on its own backend
 * and its own copy of the model. Open it with {@link openDataParallel}; one call at a time; `close()` ends the
 * threads. The master model and the optimizer stay the caller's: the pool reads the master's weights and, in
 * `trainStep`, updates them.
 */
export class DataParallelPool {
  private version = 0;
  private batch?: SharedBatch & { capacity: number; pixels: number };
  private readonly mean: Float32Array;
  private busy = false;
  private closed = false;
  private nextId = 0;

  /** @internal use {@link openDataParallel}. */
  constructor(
    private readonly model: tf.LayersModel,
    private readonly threads: Thread[],
    private readonly weights: Float32Array,
    private readonly grads: Float32Array,
    private readonly paramCount: number,
  ) {
    this.mean = new Float32Array(paramCount);
  }

  /** Number of worker threads. */
  get size(): number {
    return this.threads.length;
  }

  /** The workers' thread ids (`Worker.threadId`). */
  get threadIds(): number[] {
    return this.threads.map((t) => t.worker.threadId);
  }

  /**
   * Sends the master model's current weights to the workers (one packed Float32 copy into shared memory; each
   * worker reloads before its next job). `trainStep` does it itself; call it after changing the master otherwise.
   */
  syncWeights(): Promise<void> {
    return this.exclusive(() => this.pack());
  }

  /**
   * The gradient of the mean cross-entropy of `model.apply(adv, { training: true })` (scores before a final
   * softmax) wrt the trainable weights, where `adv` is `attack` applied per shard (or the clean images when no
   * attack is given). Shard k > 0 attacks with its own seed drawn from `attack.seed`; shard 0 uses the seed as is,
   * so one worker repeats a single-thread `attack()`. `x` and `y` stay the caller's.
   */
  gradients(x: tf.Tensor4D, y: tf.Tensor1D, attack?: AttackOptions): Promise<BatchGradients> {
    return this.exclusive(() => this.averagedGradients(x, y, attack));
  }

  /**
   * One adversarial-training step: {@link gradients}, then `optimizer.applyGradients` on the master model, then
   * the new weights go to the workers. Returns the batch's mean loss before the step.
   */
  trainStep(x: tf.Tensor4D, y: tf.Tensor1D, optimizer: tf.Optimizer, attack?: AttackOptions): Promise<number> {
    return this.exclusive(async () => {
      const { grads, loss } = await this.averagedGradients(x, y, attack);
      try {
        const vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
        optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i] })));
      } finally {
        tf.dispose(grads);
      }
      await this.pack();
      return loss;
    });
  }

  /**
   * The predicted class of each image after `attack` on its shard (of the clean image when no attack is given),
   * in batch order. No weight changes.
   */
  predict(x: tf.Tensor4D, y: tf.Tensor1D, attack?: AttackOptions): Promise<Int32Array> {
    return this.exclusive(async () => {
      const replies = await this.dispatch('predict', x, y, attack);
      const out = new Int32Array(x.shape[0]);
      for (const { start, reply } of replies) {
        if (reply.type !== 'predictions') throw new Error(`expected predictions, got ${reply.type}`);
        out.set(reply.predictions, start);
      }
      return out;
    });
  }

  /** Ends every worker thread (their backends and model copies go with them) and waits until they have exited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    await Promise.all(this.threads.map((t) => t.exited));
  }

  private async exclusive<T>(f: () => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('data-parallel pool is closed');
    if (this.busy) throw new Error('data-parallel pool runs one call at a time: await the previous one');
    this.busy = true;
    try {
      return await f();
    } finally {
      this.busy = false;
    }
  }

  private async pack(): Promise<void> {
    const packed = tf.tidy(() => tf.concat(ordered(this.model).map((w) => tf.reshape(w.read(), [-1]))));
    try {
      this.weights.set((await packed.data()) as Float32Array);
    } finally {
      packed.dispose();
    }
    this.version++;
  }

  private async averagedGradients(x: tf.Tensor4D, y: tf.Tensor1D, attack?: AttackOptions): Promise<BatchGradients> {
    if (this.model.layers.some((l) => l.getClassName() === 'BatchNormalization')) {
      throw new Error('data-parallel training does not gather BatchNormalization moving statistics from the workers');
    }
    const replies = await this.dispatch('gradients', x, y, attack);
    const n = x.shape[0];
    const P = this.paramCount;
    this.mean.fill(0);
    let loss = 0;
    for (const { thread, start, end, reply } of replies) {
      if (reply.type !== 'gradients') throw new Error(`expected gradients, got ${reply.type}`);
      const w = (end - start) / n;
      const g = this.grads.subarray(thread.index * P, (thread.index + 1) * P);
      for (let j = 0; j < P; j++) this.mean[j] += w * g[j];
      loss += w * reply.loss;
    }
    const shapes = this.model.trainableWeights.map((v) => v.shape as number[]);
    const grads = tf.tidy(() =>
      tf.split(tf.tensor1d(this.mean), shapes.map(size)).map((t, i) => tf.reshape(t, shapes[i])),
    );
    return { grads, loss };
  }

  /** Writes the batch to shared memory and runs one job per non-empty shard; replies in shard order. */
  private async dispatch(kind: Job['kind'], x: tf.Tensor4D, y: tf.Tensor1D, attack?: AttackOptions) {
    checkBatch(x, y);
    const [n, h, w, c] = x.shape;
    if (n === 0) throw new Error('data-parallel pool got an empty batch');
    const batch = this.reserve(n, h * w * c);
    new Float32Array(batch.images, 0, n * batch.pixels).set((await x.data()) as Float32Array);
    new Int32Array(batch.labels, 0, n).set((await y.data()) as Int32Array);
    const seeds = shardSeeds(attack?.seed ?? 0, this.threads.length);
    const bounds = shardBounds(n, this.threads.length);
    const jobs = bounds.map(([start, end], k) => {
      const thread = this.threads[k];
      const job: Job = {
        kind,
        id: this.nextId++,
        batch: thread.hasBatch ? undefined : { images: batch.images, labels: batch.labels },
        imageShape: [h, w, c],
        start,
        end,
        weightsVersion: this.version,
        attack: attack && { ...attack, seed: seeds[k] },
      };
      thread.hasBatch = true;
      return { thread, start, end, reply: thread.run(job) };
    });
    const replies = await Promise.allSettled(jobs.map((j) => j.reply));
    const failed = replies.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return jobs.map((j, k) => ({ ...j, reply: (replies[k] as PromiseFulfilledResult<Reply>).value }));
  }

  /** The shared batch buffers, reallocated when `n` images of `pixels` values do not fit. */
  private reserve(n: number, pixels: number) {
    const b = this.batch;
    if (b && b.pixels === pixels && b.capacity >= n) return b;
    this.batch = {
      images: new SharedArrayBuffer(n * pixels * 4),
      labels: new SharedArrayBuffer(n * 4),
      capacity: n,
      pixels,
    };
    for (const t of this.threads) t.hasBatch = false;
    return this.batch;
  }
}

/** Contiguous shards as even as possible, larger ones first; at most one per worker, none empty. */
export function shardBounds(n: number, workers: number): [number, number][] {
  const out: [number, number][] = [];
  const base = Math.floor(n / workers);
  const extra = n % workers;
  let start = 0;
  for (let k = 0; k < workers && start < n; k++) {
    const end = start + base + (k < extra ? 1 : 0);
    out.push([start, end]);
    start = end;
  }
  return out;
}

/** Shard 0 attacks with `seed` itself, shard k > 0 with the k-th draw of `Rng.fromSeed(seed)`. */
export function shardSeeds(seed: number, workers: number): number[] {
  const rng = Rng.fromSeed(seed);
  return Array.from({ length: workers }, (_, k) => (k === 0 ? seed : rng.seed()));
}

/**
 * Starts `workers` threads, each initialising its own backend (`initBackend`) and building its own copy of
 * `model` from `model.toJSON()`, and sends them the master's weights. Resolves once every worker is ready; if one
 * fails to start, all are ended and the error names it. The caller closes the pool (`close()`, in `finally`).
 */
export async function openDataParallel(
  model: tf.LayersModel,
  options: DataParallelOptions = {},
): Promise<DataParallelPool> {
  const { workers = 2, backend = 'wasm' } = options;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be an integer ≥ 1, got ${workers}`);
  const weightShapes = ordered(model).map((w) => w.shape as number[]);
  const total = weightShapes.reduce((a, s) => a + size(s), 0);
  const paramCount = model.trainableWeights.reduce((a, w) => a + size(w.shape), 0);
  const weights = new SharedArrayBuffer(total * 4);
  const grads = new SharedArrayBuffer(workers * paramCount * 4);
  const topology = JSON.stringify(model.toJSON(null, false));
  const threads = Array.from(
    { length: workers },
    (_, index) =>
      new Thread(spawnWorker({ index, backend, topology, weightShapes, paramCount, weights, grads }), index),
  );
  const pool = new DataParallelPool(model, threads, new Float32Array(weights), new Float32Array(grads), paramCount);
  try {
    await Promise.all(threads.map((t) => t.ready));
    await pool.syncWeights();
    return pool;
  } catch (err) {
    await pool.close();
    throw err;
  }
}
