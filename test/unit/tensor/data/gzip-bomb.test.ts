// A gzip bomb: a small .gz whose header (IDX dimensions, gzip trailer) promises little but that inflates to
// hundreds of MiB. The loaders stop inflating at what the header promises and name the file.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createGzip } from 'node:zlib';
import { DatasetError, loadIdx } from '../../../../tensor/data';
import { loadCifar10Files } from '../../../../tensor/data/cifar10';
import { idxBytes, tempDir } from './fixtures';

const BOMB_MIB = 128;

/**
 * `prefix` then `mib` MiB of zeros, gzipped, without ever holding the inflated bytes: the test itself must not
 * allocate what it measures (a 128 MiB buffer waiting for the garbage collector reads as the loader's peak).
 */
async function gzipZeros(prefix: Buffer, mib: number): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => gz.on('end', resolve));
  const zeros = Buffer.alloc(1024 * 1024);
  gz.write(prefix);
  for (let i = 0; i < mib; i++) gz.write(zeros);
  gz.end();
  await done;
  return Buffer.concat(out);
}

describe('gzip bombs', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  /** Peak external memory while `fn` runs, sampled every few ms, in MiB above the start. */
  async function peakMiB(fn: () => Promise<unknown>): Promise<number> {
    const base = process.memoryUsage().arrayBuffers;
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 2);
    try {
      await fn();
    } finally {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    return (peak - base) / 1024 / 1024;
  }

  it(`an IDX .gz with a valid header for 2 images that inflates to ${BOMB_MIB} MiB is refused at 8 bytes`, async () => {
    const header = idxBytes([2, 2, 2], new Uint8Array(8));
    const bomb = await gzipZeros(Buffer.from(header), BOMB_MIB);
    assert.ok(bomb.length < 2 * 1024 * 1024, `the bomb is small (${bomb.length} bytes)`);
    const images = join(dir, 'bomb-images-idx3-ubyte.gz');
    const labels = join(dir, 'bomb-labels-idx1-ubyte');
    await writeFile(images, bomb);
    await writeFile(labels, idxBytes([2], new Uint8Array([0, 1])));
    let error: unknown;
    const peak = await peakMiB(() => loadIdx(images, labels).catch((e: unknown) => (error = e)));
    assert.ok(error instanceof DatasetError, String(error));
    assert.match(
      (error as Error).message,
      /bomb-images-idx3-ubyte\.gz: decompresses to more than the 24 bytes expected/,
    );
    assert.ok(peak < BOMB_MIB / 4, `inflated at most a little: peak +${peak.toFixed(0)} MiB`);
  });

  it('a CIFAR-10 batch whose gzip trailer lies about its length is refused at that length', async () => {
    const bomb = await gzipZeros(Buffer.alloc(0), BOMB_MIB);
    bomb.writeUInt32LE(3073 * 2, bomb.length - 4); // ISIZE: two records
    const file = join(dir, 'data_batch_1.bin');
    await writeFile(file, bomb);
    let error: unknown;
    const peak = await peakMiB(() => loadCifar10Files([file]).catch((e: unknown) => (error = e)));
    assert.ok(error instanceof DatasetError, String(error));
    assert.match((error as Error).message, /data_batch_1\.bin: decompresses to more than the 6146 bytes expected/);
    assert.ok(peak < BOMB_MIB / 4, `inflated at most a little: peak +${peak.toFixed(0)} MiB`);
  });
});
