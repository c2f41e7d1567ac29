import { Failure, fail } from '../schemas/failures';
import type { DatasetRef } from '../schemas/payloads';
import { evaluatedImages, type Spec } from '../schemas/spec';
import { DatasetError, DatasetRangeError, DatasetTooLargeError, loadDataset, subset } from '../tensor/data';
import type { ImageDataset } from '../tensor/data';
import type { ActivityDeps } from './deps';
import { materializeDataset } from './fetch-dataset';

/**
 * The heavy activities of one run read the same splits again and again (prepare, baseline, train, benchmark):
 * a worker keeps the last few in memory, keyed by content hash and subset.
 */
const loaded = new Map<string, Promise<ImageDataset>>();
const KEEP = 4;

/**
 * The split of a fetched dataset that a stage works on, with the spec's subset applied: `trainSize` images of
 * train (stratified or first, seeded), or the first `testImages`/`testSize` of test so every model is measured on
 * the same images.
 */
export async function openSplit(
  deps: ActivityDeps,
  ref: DatasetRef,
  spec: Pick<Spec, 'dataset'> & Partial<Pick<Spec, 'evaluation'>>,
  split: 'train' | 'test',
  size?: number,
): Promise<ImageDataset> {
  const { subset: strategy, seed, imageSize } = spec.dataset;
  const n = size ?? (split === 'train' ? spec.dataset.trainSize : testImages(spec));
  // Everything that decides the decoded tensors: the files (content hash), their format, the size image-folder
  // images are resized to, the class names (and so label order), and the subset.
  const decodedAs = ref.format === 'image-folder' ? `${imageSize}px` : 'native';
  const classes = JSON.stringify(ref.classNames ?? null);
  const key = [
    ref.key,
    ref.format,
    decodedAs,
    classes,
    split,
    n ?? 'all',
    split === 'train' ? strategy : 'first',
    seed,
  ].join('|');
  let p = loaded.get(key);
  if (!p) {
    p = load(deps, ref, split, n, split === 'train' ? strategy : 'first', seed, imageSize, spec);
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
    while (loaded.size > KEEP) loaded.delete(loaded.keys().next().value as string);
  }
  return p;
}

/** The test images a stage reads: an evaluation's `testImages` (within `testSize`), else `testSize`. */
function testImages(spec: Pick<Spec, 'dataset'> & Partial<Pick<Spec, 'evaluation'>>): number | undefined {
  return spec.evaluation ? evaluatedImages({ ...spec, evaluation: spec.evaluation }) : spec.dataset.testSize;
}

async function load(
  deps: ActivityDeps,
  ref: DatasetRef,
  split: 'train' | 'test',
  n: number | undefined,
  strategy: 'first' | 'stratified',
  seed: number,
  imageSize: number,
  spec: Pick<Spec, 'dataset'>,
): Promise<ImageDataset> {
  const root = await materializeDataset(deps, ref);
  try {
    const full = await loadDataset({
      format: ref.format,
      path: root,
      split,
      imageSize: ref.format === 'image-folder' ? { height: imageSize, width: imageSize, channels: 3 } : undefined,
      classNames: ref.classNames,
      maxMiB: deps.maxDatasetMiB,
    });
    if (n === undefined || n >= full.count) return full;
    return subset(full, { strategy, n, seed });
  } catch (err) {
    if (err instanceof DatasetTooLargeError) throw fail(Failure.DatasetTooLarge, err.message);
    if (err instanceof DatasetRangeError) {
      throw fail(Failure.InvalidSpec, `dataset subset of ${n} ${split} images: ${err.message}`, { spec: spec.dataset });
    }
    if (err instanceof DatasetError) throw fail(Failure.CorruptDataset, `dataset ${ref.source}: ${err.message}`);
    throw err;
  }
}
