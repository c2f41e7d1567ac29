import { Rng } from '../random';
import { checkDataset, DatasetRangeError, imageBytes } from './dataset';
import type { ImageDataset } from './dataset';

function checkN(n: number, available: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new DatasetRangeError(`${what}: n must be a non-negative integer, got ${n}`);
  if (n > available) throw new DatasetRangeError(`${what}: asked for ${n} images but only ${available} exist`);
}

/** Indices 0..n-1 of a set of `count` images. */
export function firstIndices(count: number, n: number): Int32Array {
  checkN(n, count, 'first-N subset');
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** `n` distinct indices of `count` drawn with a seeded shuffle (a permutation's first n), in drawn order. */
export function randomIndices(count: number, n: number, seed: number): Int32Array {
  checkN(n, count, 'random subset');
  return Rng.fromSeed(seed).permutation(count).slice(0, n);
}

/**
 * `n` indices balanced over the classes: each class gets ⌊n/k⌋ images and the first n mod k classes (by label)
 * one more, drawn with a seeded shuffle within each class. Returned in ascending index order, so the subset keeps
 * the source's order. Errors when a class has fewer images than its share.
 */
export function stratifiedIndices(labels: Int32Array, numClasses: number, n: number, seed: number): Int32Array {
  checkN(n, labels.length, 'stratified subset');
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const rng = Rng.fromSeed(seed);
  const base = Math.floor(n / numClasses);
  const extra = n % numClasses;
  const out: number[] = [];
  for (let c = 0; c < numClasses; c++) {
    const want = base + (c < extra ? 1 : 0);
    const have = byClass[c].length;
    if (want > have) {
      throw new DatasetRangeError(
        `stratified subset of ${n} over ${numClasses} classes needs ${want} images of class ${c} but only ${have} exist`,
      );
    }
    const picked = rng.shuffle(byClass[c]);
    for (let k = 0; k < want; k++) out.push(picked[k]);
  }
  return Int32Array.from(out.sort((a, b) => a - b));
}

/** A new dataset holding copies of the images at `indices`, in that order. */
export function selectIndices(d: ImageDataset, indices: ArrayLike<number>, note = 'subset'): ImageDataset {
  const per = imageBytes(d);
  const pixels = new Uint8Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!Number.isInteger(j) || j < 0 || j >= d.count) {
      throw new DatasetRangeError(`index ${j} at position ${i} is outside 0..${d.count - 1} of ${d.source}`);
    }
    pixels.set(d.pixels.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = d.labels[j];
  }
  return checkDataset({ ...d, pixels, labels, count: indices.length, source: `${d.source} [${note}]` });
}

/** How to pick a subset: the first n, n at random, or n balanced over the classes. */
export interface SubsetSpec {
  strategy: 'first' | 'random' | 'stratified';
  n: number;
  /** Seed for 'random' and 'stratified'; default 0. */
  seed?: number;
}

/** Indices of the subset `spec` describes. */
export function subsetIndices(d: ImageDataset, spec: SubsetSpec): Int32Array {
  const { strategy, n, seed = 0 } = spec;
  switch (strategy) {
    case 'first':
      return firstIndices(d.count, n);
    case 'random':
      return randomIndices(d.count, n, seed);
    case 'stratified':
      return stratifiedIndices(d.labels, d.numClasses, n, seed);
  }
}

/** A new, compact dataset of the subset `spec` describes. */
export function subset(d: ImageDataset, spec: SubsetSpec): ImageDataset {
  const { strategy, n, seed = 0 } = spec;
  return selectIndices(
    d,
    subsetIndices(d, spec),
    strategy === 'first' ? `first ${n}` : `${strategy} ${n} seed ${seed}`,
  );
}
