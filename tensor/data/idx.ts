import { basename, join } from 'node:path';
import { checkDataset, DatasetError } from './dataset';
import type { ImageDataset } from './dataset';
import { firstExisting, readHead, readMaybeGzip } from './files';

/** Class names of Fashion-MNIST, by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Class names of MNIST digits, by label. */
export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Where Debian's dataset-fashion-mnist package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export type Split = 'train' | 'test';

const UBYTE = 0x08;
const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

/** Header of an IDX file: data type byte, dimension sizes, and where the data starts. */
export interface IdxHeader {
  type: number;
  dims: number[];
  dataOffset: number;
}

/**
 * Reads and checks an IDX header: two zero bytes, the unsigned-byte type 0x08, and a dimension count in
 * `allowedDims`. `what` describes the expected content for messages ("images", "labels").
 */
export function parseIdxHeader(buf: Uint8Array, file: string, what: string, allowedDims: readonly number[]): IdxHeader {
  const expectedMagic = allowedDims.map((d) => `${hex(0x0800 | d)}`).join(' or ');
  if (buf.length < 4) {
    throw new DatasetError(file, `truncated IDX ${what} file: expected at least 4 header bytes, found ${buf.length}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0);
  const type = buf[2];
  const ndims = buf[3];
  if (buf[0] !== 0 || buf[1] !== 0 || type !== UBYTE || !allowedDims.includes(ndims)) {
    throw new DatasetError(
      file,
      `bad magic number: expected ${expectedMagic} (IDX ${what}, unsigned bytes, ${allowedDims.join(' or ')} dimensions), found ${hex(magic)}`,
    );
  }
  const dataOffset = 4 + 4 * ndims;
  if (buf.length < dataOffset) {
    throw new DatasetError(
      file,
      `truncated IDX ${what} file: expected ${dataOffset} header bytes for ${ndims} dimensions, found ${buf.length}`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i));
  return { type, dims, dataOffset };
}

function checkLength(buf: Uint8Array, file: string, what: string, h: IdxHeader): void {
  const want = h.dataOffset + h.dims.reduce((a, b) => a * b, 1);
  if (buf.length !== want) {
    const why = buf.length < want ? 'truncated' : 'trailing bytes in';
    throw new DatasetError(
      file,
      `${why} IDX ${what} file: dimensions ${h.dims.join('×')} need ${want} bytes, found ${buf.length}`,
    );
  }
}

/** Image shape from an IDX images header: [n, h, w] (grayscale) or [n, h, w, c] with c 1 or 3. */
function imageShape(h: IdxHeader, file: string): { count: number; height: number; width: number; channels: 1 | 3 } {
  const [count, height, width, channels = 1] = h.dims;
  if (height < 1 || width < 1) {
    throw new DatasetError(file, `expected image height and width of at least 1, found ${height}×${width}`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new DatasetError(file, `expected 1 or 3 channels in the 4th IDX dimension, found ${channels}`);
  }
  return { count, height, width, channels };
}

/** Parses IDX image bytes (already decompressed). The returned pixels are a view into `buf`. */
export function parseIdxImages(
  buf: Uint8Array,
  file: string,
): { count: number; height: number; width: number; channels: 1 | 3; pixels: Uint8Array } {
  const h = parseIdxHeader(buf, file, 'images', [3, 4]);
  const shape = imageShape(h, file);
  checkLength(buf, file, 'images', h);
  return { ...shape, pixels: buf.subarray(h.dataOffset) };
}

/** Parses IDX label bytes (already decompressed), checking each label is in 0..numClasses-1. */
export function parseIdxLabels(buf: Uint8Array, file: string, numClasses: number): Int32Array {
  const h = parseIdxHeader(buf, file, 'labels', [1]);
  checkLength(buf, file, 'labels', h);
  const labels = new Int32Array(h.dims[0]);
  for (let i = 0; i < labels.length; i++) {
    const l = buf[h.dataOffset + i];
    if (l >= numClasses) {
      throw new DatasetError(
        file,
        `label out of range: expected 0..${numClasses - 1} (${numClasses} classes), found ${l} at index ${i}`,
      );
    }
    labels[i] = l;
  }
  return labels;
}

export interface IdxOptions {
  /** Class names by label; default MNIST digit names '0'..'9' (or '0'..numClasses-1). */
  classNames?: readonly string[];
  /** Number of classes; default `classNames.length`, else 10. Labels must lie in 0..numClasses-1. */
  numClasses?: number;
}

/**
 * Loads an IDX images file and its IDX labels file (MNIST, Fashion-MNIST, or any uint8 IDX pair), each gzipped
 * or not: gzip is detected by its magic number, not by the file name.
 */
export async function loadIdx(imagesFile: string, labelsFile: string, options: IdxOptions = {}): Promise<ImageDataset> {
  const numClasses = options.numClasses ?? options.classNames?.length ?? 10;
  const classNames = options.classNames ?? Array.from({ length: numClasses }, (_, i) => String(i));
  if (classNames.length !== numClasses) {
    throw new DatasetError(labelsFile, `expected ${numClasses} class names, found ${classNames.length}`);
  }
  // The headers say how many bytes the content has: inflate no more than that (a gzip bomb stops there).
  const imgBytes = await expectedIdxBytes(imagesFile, 'images', [3, 4]);
  const lblBytes = await expectedIdxBytes(labelsFile, 'labels', [1]);
  const [imgBuf, lblBuf] = await Promise.all([
    readMaybeGzip(imagesFile, imgBytes),
    readMaybeGzip(labelsFile, lblBytes),
  ]);
  const images = parseIdxImages(imgBuf, imagesFile);
  const labels = parseIdxLabels(lblBuf, labelsFile, numClasses);
  if (labels.length !== images.count) {
    throw new DatasetError(
      labelsFile,
      `count mismatch: ${images.count} images in ${imagesFile} but ${labels.length} labels in ${labelsFile}`,
    );
  }
  return checkDataset({
    pixels: images.pixels,
    labels,
    count: images.count,
    height: images.height,
    width: images.width,
    channels: images.channels,
    numClasses,
    classNames: [...classNames],
    source: `${imagesFile} + ${labelsFile}`,
  });
}

/** The bytes an IDX file's content has, by its header (read from a small prefix). */
async function expectedIdxBytes(file: string, what: string, allowedDims: readonly number[]): Promise<number> {
  const h = parseIdxHeader(await readHead(file, 4 + 4 * Math.max(...allowedDims)), file, what, allowedDims);
  return h.dataOffset + h.dims.reduce((a, b) => a * b, 1);
}

/** Candidate file names of the standard MNIST-family layout, gzipped first. */
export function idxFileNames(split: Split): { images: string[]; labels: string[] } {
  const p = split === 'train' ? 'train' : 't10k';
  const names = (kind: string, n: number) => [
    `${p}-${kind}-idx${n}-ubyte.gz`,
    `${p}-${kind}-idx${n}-ubyte`,
    `${p}-${kind}.idx${n}-ubyte.gz`,
    `${p}-${kind}.idx${n}-ubyte`,
  ];
  return { images: names('images', 3), labels: names('labels', 1) };
}

/** Finds the images and labels files of a split in a folder with the standard MNIST-family names. */
export async function findIdxFiles(dir: string, split: Split): Promise<{ imagesFile: string; labelsFile: string }> {
  const names = idxFileNames(split);
  const imagesFile = await firstExisting(names.images.map((n) => join(dir, n)));
  const labelsFile = await firstExisting(names.labels.map((n) => join(dir, n)));
  for (const [file, kind] of [
    [imagesFile, 'images'],
    [labelsFile, 'labels'],
  ] as const) {
    if (!file) {
      const expected = names[kind].join(', ');
      throw new DatasetError(dir, `no IDX ${kind} file for split '${split}': expected one of ${expected}`);
    }
  }
  return { imagesFile: imagesFile!, labelsFile: labelsFile! };
}

/** Class names for an IDX folder: Fashion-MNIST's when the folder name says "fashion", digits otherwise. */
export function idxClassNamesFor(dir: string): readonly string[] {
  return /fashion/i.test(basename(dir.replace(/[/\\]+$/, ''))) ? FASHION_MNIST_CLASSES : MNIST_CLASSES;
}

/** Loads a split of an MNIST-family folder (standard file names, gzipped or not). */
export async function loadIdxDir(dir: string, split: Split, options: IdxOptions = {}): Promise<ImageDataset> {
  const { imagesFile, labelsFile } = await findIdxFiles(dir, split);
  return loadIdx(imagesFile, labelsFile, { classNames: idxClassNamesFor(dir), ...options });
}

/** Loads Fashion-MNIST (60000 train / 10000 test images, 28×28×1, 10 classes) from its standard files. */
export async function loadFashionMnist(dir: string = FASHION_MNIST_DIR, split: Split = 'train'): Promise<ImageDataset> {
  const { imagesFile, labelsFile } = await findIdxFiles(dir, split);
  return loadIdx(imagesFile, labelsFile, { classNames: FASHION_MNIST_CLASSES });
}

/** Shape and count of an IDX images file from its header alone (reads a small prefix of the file). */
export async function peekIdxImages(
  file: string,
): Promise<{ count: number; height: number; width: number; channels: 1 | 3 }> {
  const head = await readHead(file, 20);
  return imageShape(parseIdxHeader(head, file, 'images', [3, 4]), file);
}
