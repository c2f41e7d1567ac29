/**
 * The in-memory image dataset every loader returns.
 *
 * Pixels are kept as the bytes the files hold (Uint8, 0..255, NHWC) rather than as Float32 in [0,1]: the whole
 * Fashion-MNIST train split is 47 MB instead of 188 MB, and CIFAR-10 train 154 MB instead of 614 MB. Conversion
 * to float32 in [0,1] happens per batch in `makeBatch`, which touches only that batch's pixels.
 */
export interface ImageDataset {
  /** NHWC bytes, `count × height × width × channels` long; pixel value v stands for v / 255 in [0,1]. */
  readonly pixels: Uint8Array;
  /** One label per image, each in 0..numClasses-1. */
  readonly labels: Int32Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** 1 (grayscale) or 3 (RGB). */
  readonly channels: number;
  readonly numClasses: number;
  /** `classNames[label]` names the class; its length is `numClasses`. */
  readonly classNames: readonly string[];
  /** Where the data came from (file or folder paths), for messages and provenance. */
  readonly source: string;
}

/** Shape of one image. */
export interface ImageSize {
  height: number;
  width: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
}

/** Bytes of one image. */
export function imageBytes(d: Pick<ImageDataset, 'height' | 'width' | 'channels'>): number {
  return d.height * d.width * d.channels;
}

/**
 * Input that is not what a loader expected: a wrong magic number, a truncated file, a label out of range,
 * an unreadable image. `file` names the offending file or folder; the message says what was expected and what
 * was found. A permanent problem: retrying cannot fix it.
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}

/** A request for more than there is (subset larger than the set, batch past the end). */
export class DatasetRangeError extends Error {
  override readonly name = 'DatasetRangeError';
}

/** Checks the invariants of a dataset built by hand (tests, other modules); loaders call it on what they return. */
export function checkDataset(d: ImageDataset): ImageDataset {
  const fail = (msg: string) => {
    throw new DatasetError(d.source, msg);
  };
  for (const [k, v] of [
    ['count', d.count],
    ['height', d.height],
    ['width', d.width],
    ['numClasses', d.numClasses],
  ] as const) {
    if (!Number.isInteger(v) || v < (k === 'count' ? 0 : 1)) fail(`${k} must be a positive integer, found ${v}`);
  }
  if (d.channels !== 1 && d.channels !== 3) fail(`expected 1 or 3 channels, found ${d.channels}`);
  const want = d.count * imageBytes(d);
  if (d.pixels.length !== want) {
    fail(`expected ${want} pixel bytes (${d.count}×${d.height}×${d.width}×${d.channels}), found ${d.pixels.length}`);
  }
  if (d.labels.length !== d.count) fail(`expected ${d.count} labels, found ${d.labels.length}`);
  if (d.classNames.length !== d.numClasses) {
    fail(`expected ${d.numClasses} class names, found ${d.classNames.length}`);
  }
  const bad = d.labels.findIndex((l) => l < 0 || l >= d.numClasses);
  if (bad >= 0) fail(`label ${d.labels[bad]} at index ${bad} is outside 0..${d.numClasses - 1}`);
  return d;
}
