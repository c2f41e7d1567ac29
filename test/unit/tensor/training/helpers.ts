import * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from '../../../../tensor/data/dataset';
import { Rng } from '../../../../tensor/random';

/**
 * A small learnable dataset: class k lights up a k-dependent horizontal band, plus uniform noise.
 * Pixels are bytes (ImageDataset convention).
 */
export function syntheticDataset(
  count: number,
  options: { side?: number; numClasses?: number; seed?: number } = {},
): ImageDataset {
  const { side = 8, numClasses = 3, seed = 1 } = options;
  const rng = Rng.fromSeed(seed);
  const per = side * side;
  const pixels = new Uint8Array(count * per);
  const labels = new Int32Array(count);
  const band = Math.max(1, Math.floor(side / numClasses));
  for (let i = 0; i < count; i++) {
    const k = rng.int(numClasses);
    labels[i] = k;
    for (let r = 0; r < side; r++) {
      for (let c = 0; c < side; c++) {
        const on = Math.floor(r / band) === k;
        pixels[i * per + r * side + c] = Math.min(255, (on ? 150 : 40) + rng.int(70));
      }
    }
  }
  return {
    pixels,
    labels,
    count,
    height: side,
    width: side,
    channels: 1,
    numClasses,
    classNames: Array.from({ length: numClasses }, (_, k) => `c${k}`),
    source: `synthetic(${count})`,
  };
}

/** A tiny seeded conv net for `side`×`side`×1 images; fresh each call, the caller disposes it. */
export function tinyModel(
  options: { side?: number; numClasses?: number; seed?: number; filters?: number } = {},
): tf.LayersModel {
  const { side = 8, numClasses = 3, seed = 7, filters = 4 } = options;
  const m = tf.sequential();
  m.add(
    tf.layers.conv2d({
      inputShape: [side, side, 1],
      filters,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }),
  );
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: numClasses, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
  return m;
}

/** All model weights as one flat Float32Array (for bitwise comparisons). */
export async function flatWeights(model: tf.LayersModel): Promise<Float32Array> {
  const parts = await Promise.all(model.weights.map((w) => w.read().data() as Promise<Float32Array>));
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** True when the two arrays hold the same bits. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.every((v, i) => v === ub[i]);
}
