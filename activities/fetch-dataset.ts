import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  link,
  lstat,
  mkdir,
  readFile,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
  copyFile,
} from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Context } from '@temporalio/activity';
import { Failure, fail } from '../schemas/failures';
import type { DatasetRef, FetchDatasetInput } from '../schemas/payloads';
import { sourceKind } from '../schemas/spec';
import type { Spec } from '../schemas/spec';
import { ObjectNotFoundError, formatS3Uri, parseS3Uri } from '../storage/object-store';
import { DatasetError, DatasetTooLargeError, FASHION_MNIST_CLASSES, loadDataset } from '../tensor/data';
import type { DatasetFormat } from '../tensor/data';
import type { ActivityDeps } from './deps';
import { UnsafeNameError, safeRelativeName } from './names';

/** One file of a dataset: its name under the dataset root and where its bytes are now. */
interface StagedFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** What the store keeps per dataset: enough for a heavy worker to rebuild the same tree. */
export interface DatasetManifest {
  format: DatasetFormat;
  source: string;
  files: { name: string; sha256: string; size: number }[];
}

const DEFAULT_MAX_MIB = 2048;

/** The files a format needs when the source cannot be listed (HTTP) and the spec pins no names. */
const STANDARD_FILES: Record<DatasetFormat, string[]> = {
  idx: [
    'train-images-idx3-ubyte.gz',
    'train-labels-idx1-ubyte.gz',
    't10k-images-idx3-ubyte.gz',
    't10k-labels-idx1-ubyte.gz',
  ],
  'cifar10-binary': [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`).concat('test_batch.bin'),
  'image-folder': [],
};

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
    const kind = sourceKind(source);
    staged =
      kind === 'local'
        ? await stageLocal(source, maxBytes)
        : kind === 'http'
          ? await stageHttp(cache, source, wantedNames(spec), spec.dataset.sha256 ?? {}, maxBytes)
          : await stageS3(deps, cache, source, maxBytes);
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
    safeRelativeName(f.name, `${ref.key}/manifest.json`);
    if (await cache.has(f.sha256)) continue;
    const tmp = join(deps.cacheDir, 'tmp', `${f.sha256}.${process.pid}.part`);
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
// Sources

async function stageLocal(source: string, maxBytes: number): Promise<StagedFile[]> {
  const info = await stat(source).catch((err: NodeJS.ErrnoException) => {
    throw fail(Failure.NotFound, `dataset.source ${source}: ${err.code === 'ENOENT' ? 'does not exist' : err.message}`);
  });
  if (!info.isDirectory()) {
    throw fail(Failure.CorruptDataset, `dataset.source ${source}: expected a folder of dataset files, found a file`);
  }
  const root = await realpath(source);
  const files: StagedFile[] = [];
  let total = 0;
  for await (const path of walk(root)) {
    const name = relative(root, path).split(sep).join('/');
    if (name.split('/').some((s) => s.startsWith('.'))) continue;
    const real = await realpath(path);
    if (real !== root && !real.startsWith(root + sep)) {
      throw fail(Failure.CorruptDataset, `dataset file ${path} links outside ${source} (to ${real}); refused`);
    }
    const s = await stat(real);
    if (!s.isFile()) {
      throw fail(Failure.CorruptDataset, `dataset file ${path} is not a regular file; expected only files and folders`);
    }
    total += s.size;
    checkTotal(total, maxBytes, source);
    files.push({ name, path: real, size: s.size, sha256: await sha256File(real) });
    heartbeat({ hashed: name });
  }
  if (files.length === 0) throw fail(Failure.NotFound, `dataset.source ${source}: the folder holds no files`);
  return files;
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => cmp(a.name, b.name));
  for (const e of entries) {
    const path = join(dir, e.name);
    const s = await lstat(path);
    if (s.isDirectory()) yield* walk(path);
    else if (s.isFile() || s.isSymbolicLink()) yield path;
    else throw fail(Failure.CorruptDataset, `dataset file ${path} is not a regular file (device, socket or FIFO)`);
  }
}

/** File names to fetch over HTTP: those the spec pins, else the format's standard ones. */
function wantedNames(spec: Spec): string[] {
  const pinned = Object.keys(spec.dataset.sha256 ?? {});
  if (pinned.length > 0) return pinned;
  const standard = STANDARD_FILES[spec.dataset.format];
  if (standard.length === 0) {
    throw fail(
      Failure.InvalidSpec,
      `dataset.sha256: an image-folder over HTTP needs its file list; pin every file's SHA-256 in dataset.sha256`,
    );
  }
  return standard;
}

async function stageHttp(
  cache: BlobCache,
  base: string,
  names: string[],
  pinned: Record<string, string>,
  maxBytes: number,
): Promise<StagedFile[]> {
  const files: StagedFile[] = [];
  let total = 0;
  for (const raw of names) {
    const name = safeRelativeName(raw, 'dataset.sha256');
    const url = new URL(name.split('/').map(encodeURIComponent).join('/'), base.endsWith('/') ? base : `${base}/`);
    const want = pinned[raw]?.toLowerCase();
    if (want && (await cache.has(want))) {
      const size = (await stat(cache.blobPath(want))).size;
      files.push({ name, path: cache.blobPath(want), size, sha256: want });
      continue;
    }
    const file = await cache.download(url, maxBytes - total);
    total += file.size;
    checkTotal(total, maxBytes, base);
    files.push({ name, ...file });
    heartbeat({ downloaded: name });
  }
  return files;
}

async function stageS3(deps: ActivityDeps, cache: BlobCache, source: string, maxBytes: number): Promise<StagedFile[]> {
  const { bucket, key } = parseS3Uri(source, { field: 'dataset.source', requireKey: false });
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const entries = await deps.store.list(bucket, prefix);
  if (entries.length === 0) throw fail(Failure.NotFound, `dataset.source ${source}: no objects under this prefix`);
  const total = entries.reduce((n, e) => n + e.size, 0);
  checkTotal(total, maxBytes, source);
  const files: StagedFile[] = [];
  for (const e of entries) {
    const name = safeRelativeName(e.key.slice(prefix.length), source);
    if (name.split('/').some((s) => s.startsWith('.'))) continue;
    const tmp = cache.tmpPath();
    await deps.store.getFile(bucket, e.key, tmp);
    const sha256 = await sha256File(tmp);
    files.push({ name, path: tmp, size: e.size, sha256 });
    heartbeat({ downloaded: name });
  }
  return files;
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

function checkTotal(total: number, maxBytes: number, source: string): void {
  if (total > maxBytes) {
    throw fail(
      Failure.DatasetTooLarge,
      `dataset ${source} is over ${mib(total)} MiB of files, more than this worker's limit of ${mib(maxBytes)} MiB ` +
        '(TEMPERED_MAX_DATASET_MIB)',
    );
  }
}

/** Counts, shape and classes from the files' headers: proves they parse before any heavy work is queued. */
async function describe(root: string, spec: Spec, source: string, maxMiB?: number) {
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
  return err;
}

// ---------------------------------------------------------------------------------------------------------------
// The worker cache: blobs by SHA-256, trees of hard links named by the manifest's hash.

class HttpNotFound extends Error {
  override name = 'HttpNotFound';
}

class BlobCache {
  constructor(readonly dir: string) {}

  blobPath(sha256: string): string {
    return join(this.dir, 'blobs', sha256.slice(0, 2), sha256);
  }

  tmpPath(): string {
    return join(this.dir, 'tmp', `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.part`);
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.blobPath(sha256)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** Moves a verified temporary file into the cache. */
  async adopt(tmp: string, sha256: string): Promise<void> {
    const dest = this.blobPath(sha256);
    await mkdir(dirname(dest), { recursive: true });
    await rename(tmp, dest);
  }

  /** Copies a staged file into the cache unless its blob is there already. */
  async put(f: StagedFile): Promise<void> {
    if (await this.has(f.sha256)) {
      if (f.path.startsWith(join(this.dir, 'tmp'))) await rm(f.path, { force: true });
      return;
    }
    if (f.path.startsWith(join(this.dir, 'tmp'))) return this.adopt(f.path, f.sha256);
    const tmp = this.tmpPath();
    await mkdir(dirname(tmp), { recursive: true });
    await copyFile(f.path, tmp);
    await this.adopt(tmp, f.sha256);
  }

  async readyTree(hash: string): Promise<string | undefined> {
    const root = join(this.dir, 'datasets', hash);
    return stat(join(root, '.complete')).then(
      () => root,
      () => undefined,
    );
  }

  /** The dataset folder for `manifest`, built from cached blobs (hard links, or copies across devices). */
  async tree(hash: string, manifest: DatasetManifest): Promise<string> {
    const ready = await this.readyTree(hash);
    if (ready) return ready;
    const root = join(this.dir, 'datasets', hash);
    await rm(root, { recursive: true, force: true });
    for (const f of manifest.files) {
      const dest = join(root, ...safeRelativeName(f.name, 'dataset manifest').split('/'));
      await mkdir(dirname(dest), { recursive: true });
      await link(this.blobPath(f.sha256), dest).catch(() => copyFile(this.blobPath(f.sha256), dest));
    }
    await writeFile(join(root, '.complete'), JSON.stringify({ files: manifest.files.length }));
    return root;
  }

  /**
   * Downloads `url` to a temporary file, hashing on the way. A server's ETag is remembered per URL, so a second
   * fetch of an unchanged file is a conditional request answered 304 without a body.
   */
  async download(url: URL, maxBytes: number): Promise<Omit<StagedFile, 'name'>> {
    const memo = join(this.dir, 'http', `${createHash('sha256').update(url.href).digest('hex')}.json`);
    const known = await readFile(memo, 'utf8').then(
      (t) => JSON.parse(t) as { etag?: string; sha256: string; size: number },
      () => undefined,
    );
    const headers: Record<string, string> = {};
    if (known?.etag && (await this.has(known.sha256))) headers['if-none-match'] = known.etag;
    let res: Response;
    try {
      res = await fetch(url, { headers, redirect: 'follow' });
    } catch (err) {
      throw new Error(`GET ${url.href}: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 304 && known)
      return { path: this.blobPath(known.sha256), size: known.size, sha256: known.sha256 };
    if (res.status === 404 || res.status === 410)
      throw new HttpNotFound(`GET ${url.href}: ${res.status}, no such file`);
    if (!res.ok || !res.body) {
      const err = new Error(`GET ${url.href}: HTTP ${res.status} ${res.statusText}`);
      // 4xx other than 408/429 will not change on a retry.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        throw fail(Failure.NotFound, err.message);
      }
      throw err;
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      throw fail(
        Failure.DatasetTooLarge,
        `${url.href} is ${mib(declared)} MiB, over the limit of ${mib(maxBytes)} MiB`,
      );
    }
    const tmp = this.tmpPath();
    await mkdir(dirname(tmp), { recursive: true });
    const hash = createHash('sha256');
    let size = 0;
    const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      hash.update(chunk);
      if (size > maxBytes) {
        body.destroy(
          fail(Failure.DatasetTooLarge, `${url.href} exceeds the dataset limit of ${mib(maxBytes)} MiB`) as Error,
        );
      }
    });
    try {
      await pipeline(body, createWriteStream(tmp));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const sha256 = hash.digest('hex');
    await mkdir(dirname(memo), { recursive: true });
    await writeFile(memo, JSON.stringify({ etag: res.headers.get('etag') ?? undefined, sha256, size }));
    return { path: tmp, size, sha256 };
  }
}

// ---------------------------------------------------------------------------------------------------------------

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

function treeHash(m: DatasetManifest): string {
  const h = createHash('sha256').update(`tempered-dataset-v1\n${m.format}\n`);
  for (const f of m.files) h.update(`${f.sha256}  ${f.name}\n`);
  return h.digest('hex');
}

const blobKey = (sha256: string) => `blobs/sha256/${sha256}`;
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity (a unit test calling the function directly): nothing to report to.
  }
}
