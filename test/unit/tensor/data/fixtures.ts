import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** A fresh temp folder; call `cleanup` in `after`. */
export async function tempDir(prefix = 'tempered-data-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** IDX bytes: 0 0 0x08 ndims, big-endian dims, then data. */
export function idxBytes(dims: number[], data: Uint8Array, type = 0x08): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

/** Deterministic pixel value of image i at byte k. */
export const pixelOf = (i: number, k: number) => (i * 31 + k * 7) % 256;

/** `count` images of h×w with pixelOf values, and labels i % classes. */
export function idxPair(count: number, h: number, w: number, classes = 10): { images: Buffer; labels: Buffer } {
  const px = new Uint8Array(count * h * w);
  for (let i = 0; i < count; i++) for (let k = 0; k < h * w; k++) px[i * h * w + k] = pixelOf(i, k);
  const lb = Uint8Array.from({ length: count }, (_, i) => i % classes);
  return { images: idxBytes([count, h, w], px), labels: idxBytes([count], lb) };
}

export async function writeFiles(dir: string, files: Record<string, Uint8Array>, gzip = false): Promise<void> {
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), gzip ? gzipSync(bytes) : bytes);
}

/**
 * A CIFAR-10 batch of `count` records: label i % 10; channel c of pixel p (row-major in 32×32) of record i
 * holds (i + 3p + 101c) % 256.
 */
export const cifarValue = (i: number, p: number, c: number) => (i + 3 * p + 101 * c) % 256;
export function cifarBatch(count: number, labelOf = (i: number) => i % 10): Buffer {
  const buf = Buffer.alloc(count * 3073);
  for (let i = 0; i < count; i++) {
    const rec = i * 3073;
    buf[rec] = labelOf(i);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) buf[rec + 1 + c * 1024 + p] = cifarValue(i, p, c);
  }
  return buf;
}
