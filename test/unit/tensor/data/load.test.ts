import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  checkDatasetSize,
  DatasetTooLargeError,
  datasetBytes,
  estimateDataset,
  FASHION_MNIST_DIR,
  loadDataset,
} from '../../../../tensor/data';
import type { LoadDatasetOptions } from '../../../../tensor/data';
import { cifarBatch, idxPair, tempDir, writeFiles } from './fixtures';

describe('front door and size guard', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    const { images, labels } = idxPair(6, 4, 4);
    await writeFiles(dir, { 't10k-images-idx3-ubyte': images, 't10k-labels-idx1-ubyte': labels });
    await mkdir(join(dir, 'cifar'));
    await writeFile(join(dir, 'cifar', 'test_batch.bin'), gzipSync(cifarBatch(5)));
  });
  after(() => cleanup());

  it('estimates from headers alone, gzip included', async () => {
    const idx = await estimateDataset({ format: 'idx', path: dir, split: 'test' });
    assert.deepEqual([idx.count, idx.height, idx.width, idx.channels, idx.bytes], [6, 4, 4, 1, 6 * (16 + 4)]);
    const cifar = await estimateDataset({ format: 'cifar10-binary', path: join(dir, 'cifar'), split: 'test' });
    assert.deepEqual([cifar.count, cifar.bytes], [5, datasetBytes(5, 32, 32, 3)]);
    const loaded = await loadDataset({ format: 'cifar10-binary', path: join(dir, 'cifar'), split: 'test' });
    assert.equal(loaded.count, 5);
  });

  it('refuses a dataset over the limit, saying how much it needs', async () => {
    const o: LoadDatasetOptions = { format: 'idx', path: FASHION_MNIST_DIR, split: 'train', maxMiB: 10 };
    await assert.rejects(loadDataset(o), (err: unknown) => {
      assert.ok(err instanceof DatasetTooLargeError);
      assert.match(err.message, /train-images-idx3-ubyte\.gz.*60000 images of 28×28×1 needs 45\.1 MiB, limit 10 MiB/);
      assert.equal(err.estimate.count, 60000);
      return true;
    });
    const est = {
      count: 1,
      height: 1024,
      width: 1024,
      channels: 1,
      bytes: datasetBytes(1, 1024, 1024, 1),
      source: 's',
    };
    assert.equal(checkDatasetSize(est, 2), est);
    assert.throws(() => checkDatasetSize(est, 1), /needs 1\.0 MiB, limit 1 MiB/);
  });

  it('checks imageSize against IDX files, and rejects unknown formats', async () => {
    await assert.rejects(
      loadDataset({ format: 'idx', path: dir, split: 'test', imageSize: { height: 28, width: 28, channels: 1 } }),
      /expected images of 28×28×1 \(imageSize\), found 4×4×1/,
    );
    const d = await loadDataset({ format: 'idx', path: dir, split: 'test', classNames: 'abcdefghij'.split('') });
    assert.equal(d.classNames[3], 'd');
    await assert.rejects(
      loadDataset({ format: 'tfrecord' as LoadDatasetOptions['format'], path: dir }),
      /unknown dataset format 'tfrecord': expected one of idx, cifar10-binary, image-folder/,
    );
  });
});
