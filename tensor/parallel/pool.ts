import type * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { checkBatch } from '../attacks';
import type { AttackOptions } from '../attacks';
import type { BackendName } from '../backend';
import type { TrainingConfig } from '../training/config';
import { elements, packWeights, shardJobs } from '../training/shards';
import type { ShardJob, ShardResult, ShardRunner } from '../training/shards';
import type { FromWorker, Job, SharedBatch, ToWorker, WorkerInit } from './protocol';
import { spawnTsWorker } from './spawn';

export interface DataParallelOptions {
  /** Worker threads, each with its own backend and its own copy of the model. Default 2. */
  workers?: number;
  /** The tfjs backend each worker starts with `initBackend`. Default 'wasm' (one thread per op under Node). */
  backend?: BackendName;
}

interface Deferred<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

type Reply = Exclude<FromWorker, { type: 'ready' } | { type: 'error' }>;

/** Trainable weights first, then the rest: the packing order of the shared weights and gradients. */
const ordered = (model: tf.LayersModel) => [...model.trainableWeights, ...model.nonTrainableWeights];

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
 * A pool of worker threads for data-parallel adversarial training and evaluation of one architecture, each thread
 * with its own backend and its own copy of the model. As a {@link ShardRunner} it runs the shards of a training
 * batch (shard k on thread k mod size, in turn) against the weights the caller's model holds when `run` is called;
 * the model and the optimizer stay the caller's. Open it with {@link openDataParallel}; one call at a time;
 * `close()` ends the threads.
 */
export class DataParallelPool implements ShardRunner {
  private version = 0;
  private batch?: SharedBatch & { capacity: number; pixels: number };
  private busy = false;
  private closed = false;
  private nextId = 0;

  /** @internal use {@link openDataParallel}. */
  constructor(
    private readonly shapes: string[],
    private readonly threads: Thread[],
    private readonly weights: Float32Array,
    readonly backend: BackendName,
  ) {}

  /** Number of worker threads. */
  get size(): number {
    return this.threads.length;
  }

  /** The workers' thread ids (`Worker.threadId`). */
  get threadIds(): number[] {
    return this.threads.map((t) => t.worker.threadId);
  }

  /**
   * Each shard's loss, gradient and batch-norm statistics (see `runShard`), computed by the workers against the
   * master's current weights (sent first: one packed copy into shared memory). `x` and `y` stay the caller's.
   */
  run(
    model: tf.LayersModel,
    x: tf.Tensor4D,
    y: tf.Tensor1D,
    config: TrainingConfig,
    jobs: readonly ShardJob[],
  ): Promise<ShardResult[]> {
    return this.exclusive(async () => {
      await this.pack(model);
      const shape = await this.share(x, y);
      const perThread = this.threads.map(() => [] as number[]);
      jobs.forEach((_, k) => perThread[k % this.threads.length].push(k));
      const out: ShardResult[] = new Array(jobs.length);
      const runs = perThread.map(async (shards, t) => {
        for (const k of shards) {
          const reply = await this.send(t, { kind: 'gradients', imageShape: shape, config, shard: jobs[k] });
          if (reply.type !== 'gradients') throw new Error(`expected gradients, got ${reply.type}`);
          out[k] = { loss: reply.loss, grads: reply.grads, stats: reply.stats };
        }
      });
      await settle(runs);
      return out;
    });
  }

  /**
   * The predicted class of each image after `attack` (of the clean image when no attack is given), in batch
   * order: the batch cut into one contiguous shard per thread, shard k > 0 attacking with its own seed drawn from
   * `attack.seed`. No weight changes.
   */
  predict(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, attack?: AttackOptions): Promise<Int32Array> {
    return this.exclusive(async () => {
      await this.pack(model);
      const shape = await this.share(x, y);
      const jobs = shardJobs(x.shape[0], this.threads.length, { eps: 0, seed: attack?.seed ?? 0, clean: 0 });
      const out = new Int32Array(x.shape[0]);
      await settle(
        jobs.map(async ({ start, end, seed }, t) => {
          const reply = await this.send(t, {
            kind: 'predict',
            imageShape: shape,
            start,
            end,
            ...(attack ? { attack: { ...attack, seed } } : {}),
          });
          if (reply.type !== 'predictions') throw new Error(`expected predictions, got ${reply.type}`);
          out.set(reply.predictions, start);
        }),
      );
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

  /**
   * `model`'s weights into shared memory, under a new version (the workers reload before their next job). Any
   * model of the pool's architecture will do: the pool holds no model of its own on this thread.
   */
  private async pack(model: tf.LayersModel): Promise<void> {
    const shapes = ordered(model).map((w) => w.shape.join('x'));
    if (shapes.join() !== this.shapes.join()) {
      throw new Error(`data-parallel pool: the model's weights [${shapes}] do not match the pool's [${this.shapes}]`);
    }
    this.weights.set(await packWeights(ordered(model)));
    this.version++;
  }

  /** Writes the batch to shared memory; returns the shape of one image. */
  private async share(x: tf.Tensor4D, y: tf.Tensor1D): Promise<[number, number, number]> {
    checkBatch(x, y);
    const [n, h, w, c] = x.shape;
    if (n === 0) throw new Error('data-parallel pool got an empty batch');
    const batch = this.reserve(n, h * w * c);
    new Float32Array(batch.images, 0, n * batch.pixels).set((await x.data()) as Float32Array);
    new Int32Array(batch.labels, 0, n).set((await y.data()) as Int32Array);
    return [h, w, c];
  }

  private send(t: number, job: DistributiveOmit<Job, 'id' | 'batch' | 'weightsVersion'>): Promise<Reply> {
    const thread = this.threads[t];
    const full = {
      ...job,
      id: this.nextId++,
      weightsVersion: this.version,
      ...(thread.hasBatch ? {} : { batch: { images: this.batch!.images, labels: this.batch!.labels } }),
    } as Job;
    thread.hasBatch = true;
    return thread.run(full);
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

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Waits for all of `runs`; throws the first failure once none is still running (no worker is left mid-job). */
async function settle(runs: Promise<unknown>[]): Promise<void> {
  const done = await Promise.allSettled(runs);
  const failed = done.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * Starts `workers` threads, each initialising its own backend (`initBackend`) and building its own copy of
 * `model` from `model.toJSON()`. Resolves once every worker is ready; if one fails to start, all are ended and the
 * error names it. The caller closes the pool (`close()`, in `finally`).
 */
export async function openDataParallel(
  model: tf.LayersModel,
  options: DataParallelOptions = {},
): Promise<DataParallelPool> {
  const { workers = 2, backend = 'wasm' } = options;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be an integer ≥ 1, got ${workers}`);
  const weightShapes = ordered(model).map((w) => w.shape as number[]);
  const total = weightShapes.reduce((a, s) => a + elements(s), 0);
  const weights = new SharedArrayBuffer(total * 4);
  const topology = JSON.stringify(model.toJSON(null, false));
  const threads = Array.from(
    { length: workers },
    (_, index) =>
      new Thread(
        spawnTsWorker(new URL('./worker.ts', import.meta.url), {
          index,
          backend,
          topology,
          weightShapes,
          weights,
        } satisfies WorkerInit),
        index,
      ),
  );
  const pool = new DataParallelPool(
    weightShapes.map((s) => s.join('x')),
    threads,
    new Float32Array(weights),
    backend,
  );
  try {
    await Promise.all(threads.map((t) => t.ready));
    return pool;
  } catch (err) {
    await pool.close();
    throw err;
  }
}

/**
 * The threads a training runs with here: `threads` itself, or under `auto` the worker's cores (`cores`, by default
 * this machine's) on wasm and cpu, whose kernels run on one thread each, and one on tensorflow and tensorflow-gpu,
 * whose own thread pools (or the GPU) already use the machine: shards on threads of their own were slower there on
 * the reference CNN (README, "Every core").
 */
export function threadsFor(backend: BackendName, threads: number | 'auto', cores = availableParallelism()): number {
  if (threads !== 'auto') return threads;
  return backend === 'wasm' || backend === 'cpu' ? cores : 1;
}
