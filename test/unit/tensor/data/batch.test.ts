import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { batchAt, batchCount, batches, epochOrder, makeBatch, sequentialOrder } from '../../../../tensor/data';
import type { ImageDataset } from '../../../../tensor/data';
import { Rng } from '../../../../tensor/random';

/** 10 RGB images of 2×3 with distinct byte values, labels 9 - i. */
function toy(): ImageDataset {
  const per = 2 * 3 * 3;
  const pixels = Uint8Array.from({ length: 10 * per }, (_, k) => (k * 13) % 256);
  const labels = Int32Array.from({ length: 10 }, (_, i) => 9 - i);
  const classNames = Array.from({ length: 10 }, (_, i) => `c${i}`);
  return { pixels, labels, count: 10, height: 2, width: 3, channels: 3, numClasses: 10, classNames, source: 'toy' };
}

describe('batching', () => {
  it('batchCount keeps or drops the remainder', () => {
    assert.equal(batchCount(10, 4), 3);
    assert.equal(batchCount(10, 4, true), 2);
    assert.equal(batchCount(8, 4, true), 2);
    assert.equal(batchCount(0, 4), 0);
    assert.throws(() => batchCount(10, 0), /batchSize must be a positive integer, got 0/);
  });

  it('makeBatch copies exactly the ordered images, scaled to [0,1], and leaks nothing', async () => {
    const d = toy();
    const before = tf.memory().numTensors;
    const order = epochOrder(d.count, Rng.fromSeed(5));
    assert.deepEqual(order, Rng.fromSeed(5).permutation(10), 'order comes from the seeded RNG');
    const { x, y } = makeBatch(d, order, 4, 4);
    assert.deepEqual(x.shape, [4, 2, 3, 3]);
    assert.equal(x.dtype, 'float32');
    assert.equal(y.dtype, 'int32');
    const xs = await x.data();
    const ys = await y.data();
    for (let i = 0; i < 4; i++) {
      const j = order[4 + i];
      assert.equal(ys[i], d.labels[j]);
      for (let k = 0; k < 18; k++) assert.ok(Math.abs(xs[i * 18 + k] - d.pixels[j * 18 + k] / 255) < 1e-7);
    }
    tf.dispose([x, y]);
    assert.equal(tf.memory().numTensors, before);
  });

  it('the last batch is short; batchAt and batches resume from a cursor', async () => {
    const d = toy();
    const before = tf.memory().numTensors;
    const order = sequentialOrder(10);
    const last = batchAt(d, order, 2, 4);
    assert.deepEqual(last.x.shape, [2, 2, 3, 3]);
    assert.deepEqual([...(await last.y.data())], [1, 0]);
    tf.dispose([last.x, last.y]);
    assert.throws(() => batchAt(d, order, 3, 4), /batch 3 is outside 0\.\.2/);
    assert.throws(() => makeBatch(d, order, 10, 4), /start 10 is outside 0\.\.9/);
    assert.throws(() => makeBatch(d, [0, 10], 0, 2), /index 10 at position 1 is outside 0\.\.9/);
    const seen: number[] = [];
    for (const b of batches(d, order, 4, { from: 1, dropRemainder: true })) {
      seen.push(b.index, b.x.shape[0]);
      tf.dispose([b.x, b.y]);
    }
    assert.deepEqual(seen, [1, 4]);
    assert.equal(tf.memory().numTensors, before);
  });
});
