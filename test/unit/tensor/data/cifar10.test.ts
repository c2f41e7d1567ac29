import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CIFAR10_CLASSES, DatasetError, loadCifar10, loadCifar10Files, loadDataset } from '../../../../tensor/data';
import { cifarBatch, cifarValue, tempDir } from './fixtures';

describe('CIFAR-10 binary', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  it('converts CHW planar records to NHWC', async () => {
    const file = join(dir, 'one.bin');
    await writeFile(file, cifarBatch(3));
    const d = await loadCifar10Files([file]);
    assert.deepEqual([d.count, d.height, d.width, d.channels, d.numClasses], [3, 32, 32, 3, 10]);
    assert.deepEqual([...d.labels], [0, 1, 2]);
    assert.deepEqual(d.classNames, CIFAR10_CLASSES);
    // A known pixel: image 2, row 5, column 7 → p = 5·32 + 7; NHWC offset ((2·32 + 5)·32 + 7)·3 + c.
    const p = 5 * 32 + 7;
    for (let c = 0; c < 3; c++) assert.equal(d.pixels[((2 * 32 + 5) * 32 + 7) * 3 + c], cifarValue(2, p, c));
    // And every byte, to catch an off-by-one anywhere.
    for (let i = 0; i < 3; i++)
      for (let q = 0; q < 1024; q++)
        for (let c = 0; c < 3; c++) assert.equal(d.pixels[(i * 1024 + q) * 3 + c], cifarValue(i, q, c));
  });

  it('loads the train split from data_batch_1..5 in order, class names from batches.meta.txt', async () => {
    const root = join(dir, 'cifar-10-batches-bin');
    await mkdir(root);
    for (let b = 1; b <= 5; b++)
      await writeFile(
        join(root, `data_batch_${b}.bin`),
        cifarBatch(2, () => b),
      );
    await writeFile(join(root, 'test_batch.bin'), cifarBatch(4));
    await writeFile(join(root, 'batches.meta.txt'), CIFAR10_CLASSES.map((n) => n.toUpperCase()).join('\n') + '\n\n');
    const train = await loadCifar10(dir, 'train'); // the parent folder works too
    assert.equal(train.count, 10);
    assert.deepEqual([...train.labels], [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    assert.equal(train.classNames[0], 'AIRPLANE');
    const test = await loadDataset({ format: 'cifar10-binary', path: root, split: 'test' });
    assert.equal(test.count, 4);
  });

  it('names the missing batch files', async () => {
    const { dir: empty, cleanup: c2 } = await tempDir();
    try {
      await writeFile(join(empty, 'data_batch_1.bin'), cifarBatch(1));
      await assert.rejects(
        loadCifar10(empty, 'train'),
        /missing CIFAR-10 train batch file\(s\) data_batch_2\.bin, .*data_batch_5\.bin/,
      );
    } finally {
      await c2();
    }
  });

  it('rejects a length that is not a multiple of 3073, and labels out of range', async () => {
    const file = join(dir, 'short.bin');
    await writeFile(file, cifarBatch(2).subarray(0, 3073 + 100));
    await assert.rejects(loadCifar10Files([file]), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.equal(err.file, file);
      assert.match(
        err.message,
        /expected a non-zero multiple of 3073 bytes.*found 3173 \(1 records and 100 bytes over\)/,
      );
      return true;
    });
    const bad = join(dir, 'label.bin');
    await writeFile(
      bad,
      cifarBatch(3, (i) => (i === 2 ? 10 : 0)),
    );
    await assert.rejects(
      loadCifar10Files([bad]),
      /label\.bin: label out of range: expected 0\.\.9.*found 10 in record 2/,
    );
  });
});
