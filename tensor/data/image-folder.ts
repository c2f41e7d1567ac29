import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { checkDataset, DatasetError, imageBytes } from './dataset';
import type { ImageDataset, ImageSize } from './dataset';

/** File extensions read as images (case-insensitive); other files are skipped. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg'];

const isImage = (name: string) => IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
const isHidden = (name: string) => name.startsWith('.');

/** The files of an image folder: class names (sorted) and, per image, its path and label. */
export interface ImageFolderListing {
  classNames: string[];
  files: { path: string; label: number }[];
}

/**
 * Lists an image folder laid out as one sub-folder per class: sub-folder names sorted (by code unit) give the
 * label indices; PNG/JPEG files in each (sorted by name) are its images; hidden entries and other files are
 * skipped. Errors when there are no class folders, when a class folder holds no images, or when images lie
 * in the root folder itself (a sign the layout is not one folder per class).
 */
export async function listImageFolder(dir: string): Promise<ImageFolderListing> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new DatasetError(dir, `cannot read image folder (${(err as Error).message})`, { cause: err });
  }
  const loose = entries.filter((e) => e.isFile() && isImage(e.name)).map((e) => e.name);
  if (loose.length > 0) {
    throw new DatasetError(
      dir,
      `expected one sub-folder per class with the images inside, found ${loose.length} image(s) in the folder itself (e.g. ${loose[0]})`,
    );
  }
  const classNames = entries
    .filter((e) => e.isDirectory() && !isHidden(e.name))
    .map((e) => e.name)
    .sort();
  if (classNames.length === 0) {
    throw new DatasetError(dir, 'expected one sub-folder per class, found no sub-folders');
  }
  const files: ImageFolderListing['files'] = [];
  for (let label = 0; label < classNames.length; label++) {
    const classDir = join(dir, classNames[label]);
    const names = (await readdir(classDir, { withFileTypes: true }))
      .filter((e) => e.isFile() && !isHidden(e.name) && isImage(e.name))
      .map((e) => e.name)
      .sort();
    if (names.length === 0) {
      throw new DatasetError(
        classDir,
        `class folder '${classNames[label]}' holds no ${IMAGE_EXTENSIONS.join('/')} images`,
      );
    }
    for (const n of names) files.push({ path: join(classDir, n), label });
  }
  return { classNames, files };
}

/**
 * Decodes one image file and resizes it to exactly `size` (stretching, `fit: 'fill'`), as raw HWC bytes.
 * Alpha is flattened onto black; channels 1 gives luminance, 3 gives sRGB.
 */
export async function decodeImage(file: string, size: ImageSize): Promise<Buffer> {
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    let p = sharp(file).resize(size.width, size.height, { fit: 'fill' }).flatten({ background: '#000000' });
    p = size.channels === 1 ? p.grayscale() : p.toColourspace('srgb');
    out = await p.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DatasetError(file, `cannot decode image (${(err as Error).message})`, { cause: err });
  }
  const { info, data } = out;
  if (info.width !== size.width || info.height !== size.height || info.channels !== size.channels) {
    throw new DatasetError(
      file,
      `expected ${size.height}×${size.width}×${size.channels} after resizing, found ${info.height}×${info.width}×${info.channels}`,
    );
  }
  return data;
}

export interface ImageFolderOptions {
  /** How many images are decoded at once; default 4. */
  concurrency?: number;
}

function checkSize(size: ImageSize, where: string): void {
  const ok = (v: number) => Number.isInteger(v) && v >= 1 && v <= 4096;
  if (!ok(size.height) || !ok(size.width) || (size.channels !== 1 && size.channels !== 3)) {
    throw new DatasetError(
      where,
      `expected an image size with height and width in 1..4096 and 1 or 3 channels, found ${size.height}×${size.width}×${size.channels}`,
    );
  }
}

/** Loads an image folder (one sub-folder per class), every image decoded and resized to `size`. */
export async function loadImageFolder(
  dir: string,
  size: ImageSize,
  options: ImageFolderOptions = {},
): Promise<ImageDataset> {
  const { concurrency = 4 } = options;
  checkSize(size, dir);
  const { classNames, files } = await listImageFolder(dir);
  const per = imageBytes(size);
  const pixels = new Uint8Array(files.length * per);
  const labels = Int32Array.from(files, (f) => f.label);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < files.length; i = next++) {
      try {
        pixels.set(await decodeImage(files[i].path, size), i * per);
      } catch (err) {
        next = files.length; // stop the other workers: the first error wins
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, files.length)) }, worker));
  return checkDataset({
    pixels,
    labels,
    count: files.length,
    height: size.height,
    width: size.width,
    channels: size.channels,
    numClasses: classNames.length,
    classNames,
    source: dir,
  });
}
