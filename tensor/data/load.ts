import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cifar10Files, CIFAR10_SIDE, cifar10RecordCount, loadCifar10 } from './cifar10';
import { DatasetError } from './dataset';
import type { ImageDataset, ImageSize } from './dataset';
import { contentSize } from './files';
import { findIdxFiles, loadIdxDir, peekIdxImages } from './idx';
import type { Split } from './idx';
import { listImageFolder, loadImageFolder } from './image-folder';
import { checkDatasetSize, datasetBytes, DEFAULT_MAX_DATASET_MIB } from './size';
import type { DatasetEstimate } from './size';

export const DATASET_FORMATS = ['idx', 'cifar10-binary', 'image-folder'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

export interface LoadDatasetOptions {
  format: DatasetFormat;
  /**
   * idx: a folder with the standard MNIST-family file names (Fashion-MNIST class names when the folder name
   * contains "fashion", digits otherwise). cifar10-binary: the folder with the batch files (or its parent).
   * image-folder: the folder of class sub-folders, or, with `split`, the folder holding `train/` and `test/`.
   */
  path: string;
  /** Which split; default 'train' for idx and cifar10-binary, none for image-folder (`path` is the class root). */
  split?: Split;
  /** Required for image-folder (images are resized to it); for the others, checked against the files. */
  imageSize?: ImageSize;
  /** Overrides the class names (idx only). */
  classNames?: readonly string[];
  /** Refuse to load more than this many MiB (pixels + labels); default 2048. */
  maxMiB?: number;
}

async function imageFolderRoot(path: string, split: Split | undefined): Promise<string> {
  if (!split) return path;
  const dir = join(path, split);
  const s = await stat(dir).catch(() => undefined);
  if (!s?.isDirectory())
    throw new DatasetError(path, `expected a '${split}' sub-folder for split '${split}', found none`);
  return dir;
}

function requireSize(o: LoadDatasetOptions): ImageSize {
  if (!o.imageSize) {
    throw new DatasetError(o.path, 'image-folder needs imageSize ({ height, width, channels }) to resize images to');
  }
  return o.imageSize;
}

/** Counts and shape of the dataset `o` names, from headers and listings only, without loading pixels. */
export async function estimateDataset(o: LoadDatasetOptions): Promise<DatasetEstimate> {
  switch (o.format) {
    case 'idx': {
      const split = o.split ?? 'train';
      const { imagesFile, labelsFile } = await findIdxFiles(o.path, split);
      const { count, height, width, channels } = await peekIdxImages(imagesFile);
      const bytes = datasetBytes(count, height, width, channels);
      return { count, height, width, channels, bytes, source: `${imagesFile} + ${labelsFile}` };
    }
    case 'cifar10-binary': {
      const files = await cifar10Files(o.path, o.split ?? 'train');
      let count = 0;
      for (const f of files) count += cifar10RecordCount(await contentSize(f), f);
      const side = CIFAR10_SIDE;
      return {
        count,
        height: side,
        width: side,
        channels: 3,
        bytes: datasetBytes(count, side, side, 3),
        source: files.join(', '),
      };
    }
    case 'image-folder': {
      const size = requireSize(o);
      const root = await imageFolderRoot(o.path, o.split);
      const { files } = await listImageFolder(root);
      const { height, width, channels } = size;
      return {
        count: files.length,
        height,
        width,
        channels,
        bytes: datasetBytes(files.length, height, width, channels),
        source: root,
      };
    }
    default:
      throw new DatasetError(
        o.path,
        `unknown dataset format '${String(o.format)}': expected one of ${DATASET_FORMATS.join(', ')}`,
      );
  }
}

function checkShape(d: ImageDataset, size: ImageSize | undefined): ImageDataset {
  if (size && (d.height !== size.height || d.width !== size.width || d.channels !== size.channels)) {
    throw new DatasetError(
      d.source,
      `expected images of ${size.height}×${size.width}×${size.channels} (imageSize), found ${d.height}×${d.width}×${d.channels}`,
    );
  }
  return d;
}

/**
 * The front door: estimates the dataset's size (refusing one over `maxMiB`), then loads it.
 * Errors are DatasetError (bad files, naming the file) or DatasetTooLargeError.
 */
export async function loadDataset(o: LoadDatasetOptions): Promise<ImageDataset> {
  checkDatasetSize(await estimateDataset(o), o.maxMiB ?? DEFAULT_MAX_DATASET_MIB);
  switch (o.format) {
    case 'idx':
      return checkShape(
        await loadIdxDir(o.path, o.split ?? 'train', o.classNames ? { classNames: o.classNames } : {}),
        o.imageSize,
      );
    case 'cifar10-binary':
      return checkShape(await loadCifar10(o.path, o.split ?? 'train'), o.imageSize);
    case 'image-folder':
      return loadImageFolder(await imageFolderRoot(o.path, o.split), requireSize(o));
  }
}
