import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  estimateDataset,
  loadDataset,
  loadFashionMnist,
} from '../../../../tensor/data';

/** The real Fashion-MNIST from Debian's dataset-fashion-mnist package (gzipped IDX files). */
describe('Fashion-MNIST (real files)', () => {
  it('loads the test split: 10000 images of 28×28×1, 10 balanced classes', async () => {
    const d = await loadFashionMnist(FASHION_MNIST_DIR, 'test');
    assert.deepEqual([d.count, d.height, d.width, d.channels, d.numClasses], [10000, 28, 28, 1, 10]);
    assert.equal(d.pixels.length, 10000 * 784);
    assert.deepEqual(d.classNames, FASHION_MNIST_CLASSES);
    const perClass = new Array(10).fill(0);
    for (const l of d.labels) perClass[l]++;
    assert.deepEqual(perClass, new Array(10).fill(1000));
    // Known first test labels of Fashion-MNIST: ankle boot, pullover, trouser, trouser, shirt.
    assert.deepEqual([...d.labels.subarray(0, 5)], [9, 2, 1, 1, 6]);
    let max = 0;
    for (const v of d.pixels) if (v > max) max = v;
    assert.equal(max, 255, 'pixels span the byte range, so v/255 spans [0,1]');
  });

  it('loads the train split through the front door: 60000 images', async () => {
    const est = await estimateDataset({ format: 'idx', path: FASHION_MNIST_DIR, split: 'train' });
    assert.deepEqual([est.count, est.height, est.width, est.channels], [60000, 28, 28, 1]);
    assert.equal(est.bytes, 60000 * (784 + 4));
    const d = await loadDataset({
      format: 'idx',
      path: FASHION_MNIST_DIR,
      split: 'train',
      imageSize: { height: 28, width: 28, channels: 1 },
    });
    assert.equal(d.count, 60000);
    assert.equal(d.labels.length, 60000);
    assert.equal(d.classNames[0], 'T-shirt/top', 'the folder name selects Fashion-MNIST class names');
    assert.ok(d.labels.every((l) => l >= 0 && l < 10));
  });
});
