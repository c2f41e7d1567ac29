import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random';
import { DatasetRangeError, imageBytes } from './dataset';
import type { ImageDataset } from './dataset';

/**
 * Batching as pure functions of (dataset, order, cursor): the epoch loop (tensor/training) owns the order and
 * the cursor and stores both in checkpoints; nothing here copies the whole dataset.
 */

/** An epoch's visiting order: a permutation of 0..count-1 drawn from `rng` (advancing it). */
export function epochOrder(count: number, rng: Rng): Int32Array {
  return rng.permutation(count);
}

/** The identity order 0..count-1 (evaluation, no shuffling). */
export function sequentialOrder(count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => i);
}

/**
 * Number of batches of `batchSize` in `n` items: ⌈n / batchSize⌉, or ⌊n / batchSize⌋ when `dropRemainder`
 * drops a last, smaller batch.
 */
export function batchCount(n: number, batchSize: number, dropRemainder = false): number {
  if (!Number.isInteger(n) || n < 0)
    throw new DatasetRangeError(`batchCount: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DatasetRangeError(`batchCount: batchSize must be a positive integer, got ${batchSize}`);
  }
  return dropRemainder ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** One batch: images in [0,1] (NHWC, float32) and int32 labels. The caller owns and disposes both. */
export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
}

/**
 * The batch of images `indices[start .. start+size)` (fewer at the end of `indices`), copying only those pixels,
 * scaled to [0,1]. Returns two new tensors the caller owns; nothing else is created.
 */
export function makeBatch(d: ImageDataset, indices: ArrayLike<number>, start: number, size: number): Batch {
  if (!Number.isInteger(size) || size < 1)
    throw new DatasetRangeError(`makeBatch: size must be a positive integer, got ${size}`);
  if (!Number.isInteger(start) || start < 0 || start >= indices.length) {
    throw new DatasetRangeError(
      `makeBatch: start ${start} is outside 0..${indices.length - 1} of an order of ${indices.length}`,
    );
  }
  const end = Math.min(start + size, indices.length);
  const b = end - start;
  const per = imageBytes(d);
  const x = new Float32Array(b * per);
  const y = new Int32Array(b);
  const src = d.pixels;
  for (let i = 0; i < b; i++) {
    const j = indices[start + i];
    if (!Number.isInteger(j) || j < 0 || j >= d.count) {
      throw new DatasetRangeError(
        `makeBatch: index ${j} at position ${start + i} is outside 0..${d.count - 1} of ${d.source}`,
      );
    }
    const from = j * per;
    const to = i * per;
    for (let k = 0; k < per; k++) x[to + k] = src[from + k] / 255;
    y[i] = d.labels[j];
  }
  return { x: tf.tensor4d(x, [b, d.height, d.width, d.channels], 'float32'), y: tf.tensor1d(y, 'int32') };
}

/** Batch number `batchIndex` (0-based) of `order` in batches of `batchSize`: the cursor form of `makeBatch`. */
export function batchAt(d: ImageDataset, order: ArrayLike<number>, batchIndex: number, batchSize: number): Batch {
  const n = batchCount(order.length, batchSize);
  if (!Number.isInteger(batchIndex) || batchIndex < 0 || batchIndex >= n) {
    throw new DatasetRangeError(
      `batchAt: batch ${batchIndex} is outside 0..${n - 1} (${order.length} items in batches of ${batchSize})`,
    );
  }
  return makeBatch(d, order, batchIndex * batchSize, batchSize);
}

export interface BatchesOptions {
  /** Drop a last batch smaller than `batchSize`; default false. */
  dropRemainder?: boolean;
  /** Batch to start at (a resumed cursor); default 0. */
  from?: number;
}

/**
 * Yields the batches of `order` from batch `from` on. Each yielded batch is the caller's to dispose (before
 * asking for the next, to keep memory flat).
 */
export function* batches(
  d: ImageDataset,
  order: ArrayLike<number>,
  batchSize: number,
  options: BatchesOptions = {},
): Generator<Batch & { index: number }> {
  const { dropRemainder = false, from = 0 } = options;
  const n = batchCount(order.length, batchSize, dropRemainder);
  for (let b = from; b < n; b++) yield { ...makeBatch(d, order, b * batchSize, batchSize), index: b };
}
