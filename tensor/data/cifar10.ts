import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkDataset, DatasetError } from './dataset';
import type { ImageDataset } from './dataset';
import { contentSize, fileSize, readMaybeGzip } from './files';
import type { Split } from './idx';

/** Class names of CIFAR-10, by label (used when `batches.meta.txt` is absent). */
export const CIFAR10_CLASSES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

export const CIFAR10_SIDE = 32;
const PLANE = CIFAR10_SIDE * CIFAR10_SIDE;
/** Bytes of one record: 1 label byte + 3 planes of 32×32 (R, G, B). */
export const CIFAR10_RECORD_BYTES = 1 + 3 * PLANE;

/** File names of a split in the CIFAR-10 binary version. */
export function cifar10FileNames(split: Split): string[] {
  return split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
}

/** Checks a CIFAR-10 batch's length and returns how many records it holds. */
export function cifar10RecordCount(length: number, file: string): number {
  if (length === 0 || length % CIFAR10_RECORD_BYTES !== 0) {
    throw new DatasetError(
      file,
      `expected a non-zero multiple of ${CIFAR10_RECORD_BYTES} bytes (1 label + 3072 pixel bytes per record), found ${length}` +
        (length > 0
          ? ` (${Math.floor(length / CIFAR10_RECORD_BYTES)} records and ${length % CIFAR10_RECORD_BYTES} bytes over)`
          : ''),
    );
  }
  return length / CIFAR10_RECORD_BYTES;
}

/**
 * Decodes CIFAR-10 records (CHW planar RGB) into `pixels` (NHWC) and `labels`, starting at image `offset`.
 * Returns the number of records decoded.
 */
export function decodeCifar10Batch(
  buf: Uint8Array,
  file: string,
  pixels: Uint8Array,
  labels: Int32Array,
  offset: number,
  numClasses: number,
): number {
  const n = cifar10RecordCount(buf.length, file);
  for (let r = 0; r < n; r++) {
    const rec = r * CIFAR10_RECORD_BYTES;
    const label = buf[rec];
    if (label >= numClasses) {
      throw new DatasetError(
        file,
        `label out of range: expected 0..${numClasses - 1} (${numClasses} classes), found ${label} in record ${r}`,
      );
    }
    labels[offset + r] = label;
    const out = (offset + r) * 3 * PLANE;
    for (let c = 0; c < 3; c++) {
      const plane = rec + 1 + c * PLANE;
      for (let p = 0; p < PLANE; p++) pixels[out + p * 3 + c] = buf[plane + p];
    }
  }
  return n;
}

/** Loads CIFAR-10 binary batch files (gzipped or not) into one dataset, in file order. */
export async function loadCifar10Files(
  files: readonly string[],
  classNames: readonly string[] = CIFAR10_CLASSES,
): Promise<ImageDataset> {
  if (files.length === 0) throw new DatasetError('(no files)', 'expected at least one CIFAR-10 batch file');
  const bufs: Uint8Array[] = [];
  let count = 0;
  for (const f of files) {
    // A gzip batch inflates to no more than its trailer says (a bomb stops there); a plain one is its size.
    const b = await readMaybeGzip(f, await contentSize(f));
    count += cifar10RecordCount(b.length, f);
    bufs.push(b);
  }
  const pixels = new Uint8Array(count * 3 * PLANE);
  const labels = new Int32Array(count);
  let offset = 0;
  for (let i = 0; i < files.length; i++) {
    offset += decodeCifar10Batch(bufs[i], files[i], pixels, labels, offset, classNames.length);
    bufs[i] = new Uint8Array(0); // let the raw batch go as soon as it is decoded
  }
  return checkDataset({
    pixels,
    labels,
    count,
    height: CIFAR10_SIDE,
    width: CIFAR10_SIDE,
    channels: 3,
    numClasses: classNames.length,
    classNames: [...classNames],
    source: files.length === 1 ? files[0] : `${files[0]} … (${files.length} files)`,
  });
}

/** Reads `batches.meta.txt` (one class name a line) if present; undefined when absent. */
export async function readCifar10Meta(dir: string): Promise<string[] | undefined> {
  const file = join(dir, 'batches.meta.txt');
  if ((await fileSize(file)) === undefined) return undefined;
  const names = (await readFile(file, 'utf8'))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (names.length !== CIFAR10_CLASSES.length) {
    throw new DatasetError(file, `expected ${CIFAR10_CLASSES.length} class names, one a line, found ${names.length}`);
  }
  return names;
}

/**
 * The folder that holds the batch files: `dir` itself, or `dir/cifar-10-batches-bin` as the official archive
 * unpacks.
 */
export async function resolveCifar10Dir(dir: string, split: Split): Promise<string> {
  const first = cifar10FileNames(split)[0];
  for (const d of [dir, join(dir, 'cifar-10-batches-bin')])
    if ((await fileSize(join(d, first))) !== undefined) return d;
  return dir;
}

/** Paths of a split's batch files, each checked to exist. */
export async function cifar10Files(dir: string, split: Split): Promise<string[]> {
  const root = await resolveCifar10Dir(dir, split);
  const names = cifar10FileNames(split);
  const missing: string[] = [];
  for (const n of names) if ((await fileSize(join(root, n))) === undefined) missing.push(n);
  if (missing.length > 0) {
    throw new DatasetError(
      root,
      `missing CIFAR-10 ${split} batch file(s) ${missing.join(', ')}: expected ${names.join(', ')}`,
    );
  }
  return names.map((n) => join(root, n));
}

/**
 * Loads a split of CIFAR-10 (binary version): train = data_batch_1..5.bin (50000 images), test = test_batch.bin
 * (10000), 32×32×3, NHWC. Class names from `batches.meta.txt` when present.
 */
export async function loadCifar10(dir: string, split: Split = 'train'): Promise<ImageDataset> {
  const files = await cifar10Files(dir, split);
  const names = (await readCifar10Meta(await resolveCifar10Dir(dir, split))) ?? CIFAR10_CLASSES;
  return loadCifar10Files(files, names);
}
