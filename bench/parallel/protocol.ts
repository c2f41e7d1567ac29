/**
 * What the main thread and a data-parallel worker (bench/parallel/worker.ts) say to each other. Only small
 * messages travel through postMessage; weights, gradients and images sit in SharedArrayBuffers that one side
 * writes while the other side is idle (the main thread writes before it posts a job, a worker before it replies).
 */
import type { AttackOptions } from '../../tensor/attacks';
import type { BackendName } from '../../tensor/backend';

/** What a worker gets at start (`workerData`). */
export interface WorkerInit {
  /** This worker's position in the pool: it writes its gradient at `index × paramCount` in `grads`. */
  index: number;
  backend: BackendName;
  /** `model.toJSON()` of the master model: each worker builds its own copy of the same architecture. */
  topology: string;
  /** Shapes of `model.weights` in order; the packed weights are their flattened values one after another. */
  weightShapes: number[][];
  /** How many of the packed weights' leading values are trainable (the trainable weights come first). */
  paramCount: number;
  /** Float32 packed weights of the master model, written by the main thread. */
  weights: SharedArrayBuffer;
  /** Float32, one packed gradient of `paramCount` values per worker. */
  grads: SharedArrayBuffer;
}

/** The batch, shared by every worker; reallocated (and sent again) when a larger batch arrives. */
export interface SharedBatch {
  /** Float32 images, NHWC, `capacity × height × width × channels` values. */
  images: SharedArrayBuffer;
  /** Int32 labels, `capacity` values. */
  labels: SharedArrayBuffer;
}

/** One job: the shard `[start, end)` of the shared batch. */
export interface Job {
  kind: 'gradients' | 'predict';
  id: number;
  /** Present only when the shared batch was reallocated since this worker's last job. */
  batch?: SharedBatch;
  /** [height, width, channels] of one image. */
  imageShape: [number, number, number];
  start: number;
  end: number;
  /** Version of the packed weights; the worker reloads them when it holds another. */
  weightsVersion: number;
  /** The attack for this shard (its own seed), or none for clean images. */
  attack?: AttackOptions;
}

export type ToWorker = { type: 'job'; job: Job };

export type FromWorker =
  | { type: 'ready'; simd?: boolean }
  /** Gradient written to this worker's slot of `grads`; `loss` is the shard's mean cross-entropy. */
  | { type: 'gradients'; id: number; loss: number }
  | { type: 'predictions'; id: number; predictions: Int32Array }
  | { type: 'error'; id?: number; message: string };
