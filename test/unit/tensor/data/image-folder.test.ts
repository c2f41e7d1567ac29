import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { DatasetError, estimateDataset, loadDataset, loadImageFolder } from '../../../../tensor/data';
import { tempDir } from './fixtures';

/** A solid-colour image of w×h as PNG or JPEG. */
const solid = (w: number, h: number, rgb: [number, number, number], fmt: 'png' | 'jpeg') => {
  const img = sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  return (fmt === 'png' ? img.png() : img.jpeg({ quality: 100 })).toBuffer();
};

describe('image folder', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    // Classes out of creation order, to check the sorted-name → label mapping.
    await mkdir(join(dir, 'zebra'));
    await mkdir(join(dir, 'apple'));
    await writeFile(join(dir, 'zebra', 'a.png'), await solid(10, 6, [255, 0, 0], 'png'));
    await writeFile(join(dir, 'zebra', 'b.JPG'), await solid(3, 3, [0, 0, 255], 'jpeg'));
    await writeFile(join(dir, 'apple', 'x.jpeg'), await solid(8, 8, [0, 255, 0], 'jpeg'));
    await writeFile(join(dir, 'apple', 'notes.txt'), 'not an image, skipped');
  });
  after(() => cleanup());

  it('decodes, resizes and labels RGB images by sorted class folder', async () => {
    const d = await loadImageFolder(dir, { height: 4, width: 5, channels: 3 });
    assert.deepEqual(d.classNames, ['apple', 'zebra']);
    assert.deepEqual([d.count, d.height, d.width, d.channels, d.numClasses], [3, 4, 5, 3, 2]);
    assert.deepEqual([...d.labels], [0, 1, 1]);
    const px = (i: number) => [...d.pixels.subarray(i * 60, i * 60 + 3)];
    const near = (a: number[], b: number[]) => a.every((v, k) => Math.abs(v - b[k]) <= 3);
    assert.ok(near(px(0), [0, 255, 0]), `apple/x.jpeg is green, got ${px(0)}`);
    assert.ok(near(px(1), [255, 0, 0]), `zebra/a.png is red, got ${px(1)}`);
    assert.ok(near(px(2), [0, 0, 255]), `zebra/b.JPG is blue, got ${px(2)}`);
    // Solid images stay solid after resizing: the last pixel equals the first.
    assert.deepEqual([...d.pixels.subarray(60 + 57, 60 + 60)], px(1));
  });

  it('converts to grayscale when asked for 1 channel, via the front door', async () => {
    const d = await loadDataset({ format: 'image-folder', path: dir, imageSize: { height: 2, width: 2, channels: 1 } });
    assert.deepEqual([d.count, d.height, d.width, d.channels], [3, 2, 2, 1]);
    assert.equal(d.pixels.length, 12);
    // Red, green and blue have different luminance; green is the brightest.
    const [g, r, b] = [d.pixels[0], d.pixels[4], d.pixels[8]];
    assert.ok(g > r && r > b, `luminance green ${g} > red ${r} > blue ${b}`);
    const est = await estimateDataset({
      format: 'image-folder',
      path: dir,
      imageSize: { height: 2, width: 2, channels: 1 },
    });
    assert.equal(est.count, 3);
  });

  it('names an unreadable image', async () => {
    const { dir: bad, cleanup: c2 } = await tempDir();
    try {
      await mkdir(join(bad, 'cat'));
      await writeFile(join(bad, 'cat', 'ok.png'), await solid(2, 2, [1, 2, 3], 'png'));
      await writeFile(join(bad, 'cat', 'broken.png'), 'this is not a png');
      await assert.rejects(loadImageFolder(bad, { height: 2, width: 2, channels: 3 }), (err: unknown) => {
        assert.ok(err instanceof DatasetError);
        assert.equal(err.file, join(bad, 'cat', 'broken.png'));
        assert.match(err.message, /broken\.png: cannot decode image/);
        return true;
      });
    } finally {
      await c2();
    }
  });

  it('rejects an empty class folder, no class folders, loose images, and a missing size', async () => {
    const { dir: bad, cleanup: c2 } = await tempDir();
    try {
      const size = { height: 2, width: 2, channels: 3 } as const;
      await assert.rejects(loadImageFolder(bad, size), /expected one sub-folder per class, found no sub-folders/);
      await mkdir(join(bad, 'dog'));
      await mkdir(join(bad, 'empty'));
      await writeFile(join(bad, 'dog', 'a.png'), await solid(2, 2, [1, 2, 3], 'png'));
      await assert.rejects(loadImageFolder(bad, size), /empty: class folder 'empty' holds no/);
      await writeFile(join(bad, 'loose.png'), await solid(2, 2, [1, 2, 3], 'png'));
      await assert.rejects(loadImageFolder(bad, size), /found 1 image\(s\) in the folder itself \(e\.g\. loose\.png\)/);
      await assert.rejects(loadDataset({ format: 'image-folder', path: bad }), /needs imageSize/);
      await assert.rejects(
        loadDataset({ format: 'image-folder', path: bad, split: 'test', imageSize: size }),
        /expected a 'test' sub-folder/,
      );
    } finally {
      await c2();
    }
  });
});
