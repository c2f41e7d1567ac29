import * as tf from '@tensorflow/tfjs';

/**
 * The labelled images an evaluation reads: structurally what `tensor/data`'s `ImageDataset` provides (bytes in
 * `pixels`), or float images in [0,1] in `images`. One of the two must be present; `images` wins when both are.
 */
export interface LabeledImages {
  /** NHWC float32 in [0,1], `count × height × width × channels` long. */
  readonly images?: Float32Array;
  /** NHWC bytes, value v standing for v / 255 (the `ImageDataset` layout). */
  readonly pixels?: Uint8Array;
  /** One class index in 0..numClasses-1 per image. */
  readonly labels: Int32Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly numClasses: number;
  /** Optional class names, `classNames[label]`. */
  readonly classNames?: readonly string[];
}

/** Checks sizes and labels of the first `count` images; throws an `Error` carrying the numbers. */
export function checkLabeledImages(d: LabeledImages, count = d.count): void {
  for (const [k, v] of [
    ['count', d.count],
    ['height', d.height],
    ['width', d.width],
    ['channels', d.channels],
    ['numClasses', d.numClasses],
  ] as const) {
    if (!Number.isInteger(v) || v < (k === 'count' ? 0 : 1))
      throw new Error(`dataset ${k} must be a positive integer, got ${v}`);
  }
  const values = d.count * d.height * d.width * d.channels;
  const data = d.images ?? d.pixels;
  if (!data) throw new Error('dataset has neither images (float32 in [0,1]) nor pixels (bytes)');
  if (data.length < values) {
    throw new Error(
      `dataset of ${d.count} images of [${d.height},${d.width},${d.channels}] needs ${values} values, ` +
        `${d.images ? 'images' : 'pixels'} has ${data.length}`,
    );
  }
  if (d.labels.length < d.count) throw new Error(`dataset has ${d.count} images but ${d.labels.length} labels`);
  for (let i = 0; i < count; i++) {
    const l = d.labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= d.numClasses) {
      throw new Error(`label of image ${i} is ${l}, expected 0..${d.numClasses - 1}`);
    }
  }
}

/** Images `indices` of `d` as a new [n,h,w,c] float32 tensor in [0,1] and their labels; the caller owns both. */
export function batchTensors(d: LabeledImages, indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const per = d.height * d.width * d.channels;
  const n = indices.length;
  const values = new Float32Array(n * per);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i];
    if (d.images) values.set(d.images.subarray(j * per, (j + 1) * per), i * per);
    else {
      const src = d.pixels!;
      for (let k = 0, o = j * per; k < per; k++) values[i * per + k] = src[o + k] / 255;
    }
    labels[i] = d.labels[j];
  }
  return {
    x: tf.tensor4d(values, [n, d.height, d.width, d.channels]),
    y: tf.tensor1d(labels, 'int32'),
  };
}

/** Indices start..start+size-1. */
export function span(start: number, size: number): Int32Array {
  const out = new Int32Array(size);
  for (let i = 0; i < size; i++) out[i] = start + i;
  return out;
}
