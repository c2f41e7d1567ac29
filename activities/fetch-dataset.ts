import { rm } from 'node:fs/promises';
import { Failure, fail } from '../schemas/failures';
import type { DatasetRef, FetchDatasetInput } from '../schemas/payloads';
import { sourceKind } from '../schemas/spec';
import type { Spec } from '../schemas/spec';
import { ObjectNotFoundError, ObjectStoreDeniedError, formatS3Uri, parseS3Uri } from '../storage/object-store';
import { DatasetError, DatasetTooLargeError, FASHION_MNIST_CLASSES, loadDataset } from '../tensor/data';
import { heartbeat } from './context';
import { BlobCache, blobKey, cmp, sha256File, treeHash } from './dataset-cache';
import type { DatasetManifest, StagedFile } from './dataset-cache';
import { HttpNotFound, stageHttp, stageLocal, stageS3, wantedNames } from './dataset-sources';
import type { ActivityDeps } from './deps';
import { checkSource } from './source-policy';
import { UnsafeNameError, safeRelativeName } from './names';

export type { DatasetManifest } from './dataset-cache';

const DEFAULT_MAX_MIB = 2048;

/**
 * fetchDataset: gathers the dataset's files from a local folder, HTTP(S) or S3 into the worker cache (by content
 * hash: a file already cached is not fetched again), verifies the spec's SHA-256s, checks the files parse, and
 * publishes them to the object store under `datasets/<tree hash>/` so any heavy worker can rebuild the same tree.
 */
export async function fetchDataset(deps: ActivityDeps, input: FetchDatasetInput): Promise<DatasetRef> {
  const { spec } = input;
  const { source, format } = spec.dataset;
  const maxBytes = (deps.maxDatasetMiB ?? DEFAULT_MAX_MIB) * 1024 * 1024;
  const cache = new BlobCache(deps.cacheDir);
  let staged: StagedFile[];
  try {
    // The worker's allow-list first: nothing is read from a source it does not name.
    if (deps.sources) await checkSource(deps.sources, source);
    const kind = sourceKind(source);
    staged =
      kind === 'local'
        ? await stageLocal(source, maxBytes, format)
        : kind === 'http'
          ? await stageHttp(cache, source, wantedNames(spec), spec.dataset.sha256 ?? {}, maxBytes, deps.sources)
          : await stageS3(deps, cache, source, maxBytes, format);
  } catch (err) {
    throw asFailure(err, source);
  }
  verifyChecksums(staged, spec.dataset.sha256 ?? {}, source);

  for (const f of staged) await cache.put(f);
  const manifest: DatasetManifest = {
    format,
    source,
    files: staged.map(({ name, sha256, size }) => ({ name, sha256, size })).sort((a, b) => cmp(a.name, b.name)),
  };
  const hash = treeHash(manifest);
  const root = await cache.tree(hash, manifest);
  const described = await describe(root, spec, source, deps.maxDatasetMiB);

  const bucket = spec.artifacts.bucket;
  await deps.store.ensureBucket(bucket);
  const manifestKey = `datasets/${hash}/manifest.json`;
  if (!(await deps.store.exists(bucket, manifestKey))) {
    for (const f of manifest.files) {
      const key = blobKey(f.sha256);
      if (!(await deps.store.exists(bucket, key))) await deps.store.putFile(bucket, key, cache.blobPath(f.sha256));
      heartbeat({ uploaded: f.name });
    }
    // The manifest goes last: its presence means every blob it names is in the store.
    await deps.store.putJson(bucket, manifestKey, manifest);
  }
  return {
    key: formatS3Uri(bucket, `datasets/${hash}`),
    source,
    format,
    sha256s: Object.fromEntries(manifest.files.map((f) => [f.name, f.sha256])),
    ...described,
  };
}

/**
 * Rebuilds a dataset tree in this worker's cache from the object store (a no-op when it is already there), and
 * returns its local root. Every blob is verified against the manifest's hash on the way in.
 */
export async function materializeDataset(deps: ActivityDeps, ref: DatasetRef): Promise<string> {
  const cache = new BlobCache(deps.cacheDir);
  const { bucket, key } = parseS3Uri(ref.key, { field: 'dataset.key' });
  const hash = key.split('/').pop() as string;
  const ready = await cache.readyTree(hash);
  if (ready) return ready;
  let manifest: DatasetManifest;
  try {
    manifest = await deps.store.getJson<DatasetManifest>(bucket, `${key}/manifest.json`);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      throw fail(Failure.NotFound, `dataset ${ref.key} has no manifest.json in the object store (was it deleted?)`);
    }
    throw err;
  }
  for (const f of manifest.files) {
    try {
      safeRelativeName(f.name, `${ref.key}/manifest.json`);
    } catch (err) {
      throw asFailure(err, ref.source);
    }
    if (await cache.has(f.sha256)) continue;
    // A private name: several activities may fetch the same blob at once; the first rename wins, harmlessly.
    const tmp = await cache.tmpPath();
    await deps.store.getFile(bucket, blobKey(f.sha256), tmp);
    const got = await sha256File(tmp);
    if (got !== f.sha256) {
      await rm(tmp, { force: true });
      throw new Error(`blob of ${f.name} from ${ref.key} hashes to ${got}, expected ${f.sha256}; will retry`);
    }
    await cache.adopt(tmp, f.sha256);
  }
  return cache.tree(hash, manifest);
}

// ---------------------------------------------------------------------------------------------------------------
// Checks

function verifyChecksums(files: StagedFile[], pinned: Record<string, string>, source: string): void {
  const byName = new Map(files.map((f) => [f.name, f]));
  const problems: string[] = [];
  for (const [name, want] of Object.entries(pinned)) {
    const f = byName.get(name);
    if (!f) problems.push(`${name}: pinned in dataset.sha256 but not in ${source}`);
    else if (f.sha256 !== want.toLowerCase())
      problems.push(`${name}: expected sha256 ${want.toLowerCase()}, got ${f.sha256}`);
  }
  if (problems.length > 0) {
    throw fail(Failure.ChecksumMismatch, `dataset ${source} does not match dataset.sha256: ${problems.join('; ')}`, {
      problems,
    });
  }
}

/** Counts, shape and classes from the files' headers: proves they parse before any heavy work is queued. */
async function describe(root: string, spec: Pick<Spec, 'dataset'>, source: string, maxMiB?: number) {
  const { format, imageSize } = spec.dataset;
  const size = format === 'image-folder' ? { height: imageSize, width: imageSize, channels: 3 as const } : undefined;
  try {
    // Both splits are decoded once here, so a truncated or corrupt file fails the run before any heavy work is
    // queued (a worker reads every byte later anyway); the pixels are dropped right after.
    const train = await loadDataset({ format, path: root, split: 'train', imageSize: size, maxMiB });
    // The test split is small: loading it checks labels and pixels, and tells the classes.
    // The cache folder is named by hash: say which names the classes have, as the source's folder name would.
    const classNames = format === 'idx' && /fashion/i.test(source) ? [...FASHION_MNIST_CLASSES] : undefined;
    const test = await loadDataset({ format, path: root, split: 'test', imageSize: size, classNames });
    if (test.height !== train.height || test.width !== train.width || test.channels !== train.channels) {
      throw new DatasetError(
        root,
        `train images are ${train.height}×${train.width}×${train.channels} but test images are ` +
          `${test.height}×${test.width}×${test.channels}`,
      );
    }
    // Labels are indices into the class list: an image folder with {cat, dog} for training and {cat, zebra} for
    // testing would label dogs as zebras. Both splits must name the same classes in the same order.
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((c, i) => c === b[i]);
    if (format !== 'idx' && !same(train.classNames, test.classNames)) {
      throw new DatasetError(
        source,
        `the train split's classes [${train.classNames.join(', ')}] differ from the test split's ` +
          `[${test.classNames.join(', ')}]; both splits must have the same class folders`,
      );
    }
    if (train.numClasses !== test.numClasses) {
      throw new DatasetError(
        root,
        `the train split has ${train.numClasses} classes, the test split ${test.numClasses}`,
      );
    }
    return {
      counts: { train: train.count, test: test.count, classes: test.numClasses },
      imageShape: [train.height, train.width, train.channels] as [number, number, number],
      classNames: [...test.classNames],
    };
  } catch (err) {
    throw asFailure(err, source);
  }
}

/** Permanent problems of the input become failures of the vocabulary; anything else stays retryable. */
function asFailure(err: unknown, source: string): unknown {
  if (err instanceof DatasetTooLargeError) return fail(Failure.DatasetTooLarge, err.message);
  if (err instanceof DatasetError) return fail(Failure.CorruptDataset, `dataset ${source}: ${err.message}`);
  if (err instanceof UnsafeNameError) return fail(Failure.CorruptDataset, err.message);
  if (err instanceof HttpNotFound) return fail(Failure.NotFound, err.message);
  // A missing bucket or prefix, and a store that refuses the worker's keys, stay so on a retry.
  if (err instanceof ObjectNotFoundError) return fail(Failure.NotFound, `dataset.source ${source}: ${err.message}`);
  if (err instanceof ObjectStoreDeniedError)
    return fail(Failure.AccessDenied, `dataset.source ${source}: ${err.message}`);
  return err;
}
