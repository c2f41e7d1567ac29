import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DatasetError, loadIdx, loadIdxDir, parseIdxImages, peekIdxImages } from '../../../../tensor/data';
import { idxBytes, idxPair, pixelOf, tempDir, writeFiles } from './fixtures';

describe('IDX', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  const expectError = async (imgs: Uint8Array, lbls: Uint8Array, pattern: RegExp, badFile: 'images' | 'labels') => {
    const name = pattern.source.replace(/\W+/g, '_').slice(0, 30);
    const imagesFile = join(dir, `${name}-images`);
    const labelsFile = join(dir, `${name}-labels`);
    await writeFile(imagesFile, imgs);
    await writeFile(labelsFile, lbls);
    await assert.rejects(loadIdx(imagesFile, labelsFile), (err: unknown) => {
      assert.ok(err instanceof DatasetError, `expected DatasetError, got ${String(err)}`);
      assert.equal(err.file, badFile === 'images' ? imagesFile : labelsFile);
      assert.match(err.message, pattern);
      assert.ok(err.message.includes(err.file), 'message names the file');
      return true;
    });
  };

  for (const gzip of [false, true]) {
    it(`round-trips ${gzip ? 'gzipped' : 'raw'} files (gzip detected by content, not name)`, async () => {
      const { images, labels } = idxPair(7, 3, 5);
      const sub = gzip ? 'gz' : 'raw';
      // Deliberately no .gz extension on the gzipped files.
      await writeFiles(dir, { [`${sub}-img`]: images, [`${sub}-lbl`]: labels }, gzip);
      const d = await loadIdx(join(dir, `${sub}-img`), join(dir, `${sub}-lbl`));
      assert.deepEqual([d.count, d.height, d.width, d.channels, d.numClasses], [7, 3, 5, 1, 10]);
      assert.equal(d.pixels.length, 7 * 15);
      for (let i = 0; i < 7; i++) {
        assert.equal(d.labels[i], i % 10);
        for (let k = 0; k < 15; k++) assert.equal(d.pixels[i * 15 + k], pixelOf(i, k));
      }
      assert.deepEqual(d.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    });
  }

  it('finds standard file names in a folder, with or without .gz', async () => {
    const { images, labels } = idxPair(4, 2, 2);
    const { dir: fashion, cleanup: c2 } = await tempDir('fashion-mnist-');
    try {
      await writeFiles(fashion, { 'train-images-idx3-ubyte.gz': images, 'train-labels-idx1-ubyte.gz': labels }, true);
      await writeFiles(fashion, { 't10k-images-idx3-ubyte': images, 't10k-labels-idx1-ubyte': labels });
      const train = await loadIdxDir(fashion, 'train');
      const test = await loadIdxDir(fashion, 'test');
      assert.equal(train.count, 4);
      assert.equal(test.count, 4);
      assert.equal(train.classNames[9], 'Ankle boot', 'a folder named fashion… gets Fashion-MNIST class names');
      assert.deepEqual(await peekIdxImages(join(fashion, 'train-images-idx3-ubyte.gz')), {
        count: 4,
        height: 2,
        width: 2,
        channels: 1,
      });
      await assert.rejects(
        loadIdxDir(dir, 'train'),
        /no IDX images file for split 'train'.*train-images-idx3-ubyte\.gz/,
      );
    } finally {
      await c2();
    }
  });

  it('rejects a bad magic number', async () => {
    const { images, labels } = idxPair(3, 2, 2);
    await expectError(
      labels,
      labels,
      /bad magic number: expected 0x00000803 or 0x00000804.*found 0x00000801/,
      'images',
    );
    await expectError(images, images, /bad magic number: expected 0x00000801.*found 0x00000803/, 'labels');
    await expectError(idxBytes([3, 2, 2], new Uint8Array(12), 0x0d), labels, /found 0x00000d03/, 'images');
  });

  it('rejects dimensions that disagree with the data', async () => {
    const { labels } = idxPair(3, 2, 2);
    // Header says 3×4×4 but the data holds 3×2×2.
    await expectError(
      idxBytes([3, 4, 4], new Uint8Array(12)),
      labels,
      /dimensions 3×4×4 need 64 bytes, found 28/,
      'images',
    );
    await expectError(
      idxBytes([3, 2, 2, 2], new Uint8Array(24)),
      labels,
      /expected 1 or 3 channels.*found 2/,
      'images',
    );
  });

  it('rejects a truncated file, and trailing bytes', async () => {
    const { images, labels } = idxPair(3, 2, 2);
    await expectError(
      images.subarray(0, images.length - 1),
      labels,
      /truncated IDX images file.*need 28 bytes, found 27/,
      'images',
    );
    await expectError(images.subarray(0, 10), labels, /truncated IDX images file: expected 16 header bytes/, 'images');
    await expectError(
      images,
      labels.subarray(0, 2),
      /truncated IDX labels file: expected at least 4 header bytes, found 2/,
      'labels',
    );
    await expectError(Buffer.concat([images, Buffer.from([1])]), labels, /trailing bytes in IDX images file/, 'images');
    // A truncated gzip stream is caught (by the header read before inflating, or by the decompressor), named by file.
    await expectError(
      gzipSync(images).subarray(0, 20),
      labels,
      /gzip magic number but does not decompress|truncated IDX images file/,
      'images',
    );
  });

  it('rejects a label out of range', async () => {
    const { images } = idxPair(3, 2, 2);
    await expectError(
      images,
      idxBytes([3], Uint8Array.from([0, 10, 1])),
      /label out of range: expected 0\.\.9.*found 10 at index 1/,
      'labels',
    );
  });

  it('rejects a count mismatch between images and labels', async () => {
    const { images } = idxPair(3, 2, 2);
    await expectError(
      images,
      idxBytes([4], Uint8Array.from([0, 1, 2, 3])),
      /count mismatch: 3 images in .* but 4 labels/,
      'labels',
    );
  });

  it('parses 4-D IDX images as NHWC with channels', () => {
    const px = Uint8Array.from({ length: 2 * 2 * 2 * 3 }, (_, i) => i);
    const r = parseIdxImages(idxBytes([2, 2, 2, 3], px), 'x');
    assert.deepEqual([r.count, r.height, r.width, r.channels], [2, 2, 2, 3]);
    assert.deepEqual([...r.pixels], [...px]);
  });
});
