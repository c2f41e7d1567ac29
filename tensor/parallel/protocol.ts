/**
 * What the main thread and a data-parallel worker (tensor/parallel/worker.ts) say to each other. Images and the
 * master's weights sit in SharedArrayBuffers that the main thread writes only while every worker is idle; a
 * shard's gradient and statistics come back as transferred buffers (no copy).
 */
import type { AttackOptions } from '../attacks';
import type { BackendName } from '../backend';
import type { ShardJob } from '../training/shards';
import type { TrainingConfig } from '../training/config';

/** What a worker gets at start (`workerData`). */
export interface WorkerInit {
  index: number;
  backend: BackendName;
  /** `model.toJSON()` of the master model: each worker builds its own copy of the same architecture. */
  topology: string;
  /** Shapes of the trainable, then the non-trainable weights; the packed weights are their values in that order. */
  weightShapes: number[][];
  /** Float32 packed weights of the master model, written by the main thread. */
  weights: SharedArrayBuffer;
}

/** The batch, shared by every worker; reallocated (and sent again) when a larger batch arrives. */
export interface SharedBatch {
  /** Float32 images, NHWC, `capacity × height × width × channels` values. */
  images: SharedArrayBuffer;
  /** Int32 labels, `capacity` values. */
  labels: SharedArrayBuffer;
}

interface JobBase {
  id: number;
  /** Present only when the shared batch was reallocated since this worker's last job. */
  batch?: SharedBatch;
  /** [height, width, channels] of one image. */
  imageShape: [number, number, number];
  /** Version of the packed weights; the worker reloads them when it holds another. */
  weightsVersion: number;
}

/** One shard of a training batch: the recipe's loss and gradient on the examples `[shard.start, shard.end)`. */
export interface ShardGradientsJob extends JobBase {
  kind: 'gradients';
  config: TrainingConfig;
  shard: ShardJob;
}

/** The predicted class of each image of `[start, end)` after `attack` (of the clean image when none). */
export interface PredictJob extends JobBase {
  kind: 'predict';
  start: number;
  end: number;
  attack?: AttackOptions;
}

export type Job = ShardGradientsJob | PredictJob;

export type ToWorker = { type: 'job'; job: Job };

export type FromWorker =
  | { type: 'ready'; simd?: boolean }
  | { type: 'gradients'; id: number; loss: number; grads: Float32Array; stats: Float32Array }
  | { type: 'predictions'; id: number; predictions: Int32Array }
  | { type: 'error'; id?: number; message: string };
