/**
 * Shared by the models/attacks/eval unit tests: backend setup, a few hundred Fashion-MNIST images read straight
 * from the IDX files, and a tiny convolutional classifier trained on them for a few seconds.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { crossEntropy } from '../../../../tensor/losses';
import { Rng } from '../../../../tensor/random';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const FASHION_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

/** The wasm backend when `tensor/backend/index.ts` exists (its `initBackend()`), otherwise cpu. */
export async function setupBackend(): Promise<string> {
  const backendModule = join(root, 'tensor/backend/index.ts');
  if (existsSync(backendModule) && process.env.TEMPERED_TEST_BACKEND !== 'cpu') {
    const mod = (await import(backendModule)) as { initBackend?: () => Promise<unknown> };
    if (typeof mod.initBackend === 'function') {
      await mod.initBackend();
      return tf.getBackend();
    }
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return tf.getBackend();
}

export interface Images {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
}

/** `count` Fashion-MNIST test-split images from index `start`, as floats in [0,1]. */
export async function fashion(start: number, count: number): Promise<Images> {
  const img = gunzipSync(await readFile(join(FASHION_DIR, 't10k-images-idx3-ubyte.gz')));
  const lab = gunzipSync(await readFile(join(FASHION_DIR, 't10k-labels-idx1-ubyte.gz')));
  if (img.readUInt32BE(0) !== 0x803 || lab.readUInt32BE(0) !== 0x801) throw new Error('not IDX files');
  const side = 28;
  const images = new Float32Array(count * side * side);
  for (let i = 0; i < images.length; i++) images[i] = img[16 + start * side * side + i] / 255;
  const labels = Int32Array.from(lab.subarray(8 + start, 8 + start + count));
  return { images, labels, count, height: side, width: side, channels: 1, numClasses: 10 };
}

/**
 * A small classifier that trains in seconds on the cpu backend (whose conv-filter gradient is slow):
 * flatten → dense 32 relu → dense logits. The caller disposes it.
 */
export function tinyMlp(seed = 1): tf.LayersModel {
  const model = tf.sequential({ name: 'tiny_mlp' });
  model.add(tf.layers.flatten({ inputShape: [28, 28, 1] }));
  model.add(
    tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
  );
  model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
  return model;
}

/** Trains `model` in place with Adam on `data` for `epochs`; deterministic given the model's initial weights. */
export async function train(model: tf.LayersModel, data: Images, epochs = 6, batchSize = 50): Promise<void> {
  const optimizer = tf.train.adam(0.01);
  const rng = Rng.fromSeed(7);
  const x = tf.tensor4d(data.images, [data.count, data.height, data.width, data.channels]);
  const y = tf.tensor1d(data.labels, 'int32');
  try {
    for (let e = 0; e < epochs; e++) {
      const order = tf.tensor1d(rng.permutation(data.count), 'int32');
      for (let b = 0; b + batchSize <= data.count; b += batchSize) {
        tf.tidy(() => {
          const idx = order.slice(b, batchSize);
          const xb = tf.gather(x, idx) as tf.Tensor4D;
          const yb = tf.gather(y, idx) as tf.Tensor1D;
          optimizer.minimize(() => crossEntropy(model.apply(xb, { training: true }) as tf.Tensor2D, yb));
        });
      }
      order.dispose();
      await tf.nextFrame?.();
    }
  } finally {
    x.dispose();
    y.dispose();
    optimizer.dispose();
  }
}

/** A trained tiny CNN plus held-out images it was not trained on. */
export async function trainedFixture(): Promise<{ model: tf.LayersModel; trainSet: Images; testSet: Images }> {
  const trainSet = await fashion(0, 1000);
  const testSet = await fashion(5000, 200);
  const model = tinyMlp();
  await train(model, trainSet);
  return { model, trainSet, testSet };
}

/** The images and labels of `data` as tensors; the caller disposes both. */
export function tensors(data: Images, count = data.count): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const n = Math.min(count, data.count);
  const per = data.height * data.width * data.channels;
  return {
    x: tf.tensor4d(data.images.subarray(0, n * per), [n, data.height, data.width, data.channels]),
    y: tf.tensor1d(data.labels.subarray(0, n), 'int32'),
  };
}

/** Fraction of `x` the model classifies as `y`. */
export function accuracy(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D): number {
  return tf.tidy(() => {
    const pred = tf.argMax(model.apply(x, { training: false }) as tf.Tensor2D, 1);
    return tf.mean(tf.equal(pred, y).toFloat()).dataSync()[0];
  });
}

/** Mean cross-entropy of the model's logits on `x` against `y`. */
export function meanLoss(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D): number {
  return tf.tidy(() => crossEntropy(model.apply(x, { training: false }) as tf.Tensor2D, y).dataSync()[0]);
}
