// The dataset source stagers: a local folder, HTTP(S) or S3 → files staged on this worker (in the cache's tmp
// folder, or the local files themselves), each with its name, size and SHA-256.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, readdir, realpath, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ApplicationFailure } from '@temporalio/common';
import { Failure, fail } from '../schemas/failures';
import type { Spec } from '../schemas/spec';
import { parseS3Uri } from '../storage/object-store';
import { isDatasetFile } from '../tensor/data';
import type { DatasetFormat } from '../tensor/data';
import { heartbeat } from './context';
import type { BlobCache, StagedFile } from './dataset-cache';
import { cmp, mib, sha256File } from './dataset-cache';
import type { ActivityDeps } from './deps';
import { safeRelativeName } from './names';
import { checkUrl } from './source-policy';
import type { SourcePolicy } from './source-policy';

/** A file an HTTP source says does not exist (404/410): permanent. */
export class HttpNotFound extends Error {
  override name = 'HttpNotFound';
}

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

export function checkTotal(total: number, maxBytes: number, source: string): void {
  if (total > maxBytes) {
    throw fail(
      Failure.DatasetTooLarge,
      `dataset ${source} is over ${mib(total)} MiB of files, more than this worker's limit of ${mib(maxBytes)} MiB ` +
        '(TEMPERED_MAX_DATASET_MIB)',
    );
  }
}

/** HTTP waits when the worker sets none: for a connection and headers, and between two chunks of a body. */
export const DEFAULT_HTTP_TIMEOUT_S = 30;

/**
 * The files of a local folder that `format` needs (others, e.g. a `secrets.txt` beside the data, are not read),
 * each hashed. Links must stay inside the folder; devices, sockets and FIFOs are refused.
 */
export async function stageLocal(source: string, maxBytes: number, format: DatasetFormat): Promise<StagedFile[]> {
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
    if (!isDatasetFile(format, name)) continue;
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
  if (files.length === 0) {
    throw fail(Failure.NotFound, `dataset.source ${source}: the folder holds no ${format} dataset files`);
  }
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
export function wantedNames(spec: Pick<Spec, 'dataset'>): string[] {
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

export async function stageHttp(
  cache: BlobCache,
  base: string,
  names: string[],
  pinned: Record<string, string>,
  maxBytes: number,
  policy?: SourcePolicy,
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
    const file = await download(cache, url, maxBytes - total, policy);
    total += file.size;
    checkTotal(total, maxBytes, base);
    files.push({ name, ...file });
    heartbeat({ downloaded: name });
  }
  return files;
}

/**
 * Downloads `url` to a private temporary file, hashing on the way. A server's ETag is remembered per URL, so a
 * second fetch of an unchanged file is a conditional request answered 304 without a body.
 */
async function download(
  cache: BlobCache,
  url: URL,
  maxBytes: number,
  policy?: SourcePolicy,
): Promise<Omit<StagedFile, 'name'>> {
  const known = await cache.remembered(url);
  const headers: Record<string, string> = {};
  if (known?.etag) headers['if-none-match'] = known.etag;
  const timeoutS = policy?.httpTimeoutS ?? DEFAULT_HTTP_TIMEOUT_S;
  const abort = new AbortController();
  // Connection and headers within the timeout; afterwards the body's idle timer below takes over.
  let timer = setTimeout(() => abort.abort(new Error(`no response within ${timeoutS} s`)), timeoutS * 1000);
  let res: Response;
  try {
    // Redirects are followed by hand, so each hop is checked against the worker's allow-list.
    let at = url;
    for (let hop = 0; ; hop++) {
      if (policy) await checkUrl(policy, at);
      res = await fetch(at, { headers, redirect: 'manual', signal: abort.signal });
      const next = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || res.status === 304 || !next) break;
      if (hop >= 5) throw new Error(`GET ${url.href}: more than 5 redirects`);
      await res.body?.cancel();
      at = new URL(next, at);
    }
  } catch (err) {
    clearTimeout(timer);
    if (err instanceof ApplicationFailure) throw err;
    const why = abort.signal.aborted ? (abort.signal.reason as Error).message : (err as Error).message;
    throw new Error(`GET ${url.href}: ${why}`, { cause: err });
  }
  clearTimeout(timer);
  if (res.status === 304 && known)
    return { path: cache.blobPath(known.sha256), size: known.size, sha256: known.sha256 };
  if (res.status === 404 || res.status === 410) throw new HttpNotFound(`GET ${url.href}: ${res.status}, no such file`);
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
    throw fail(Failure.DatasetTooLarge, `${url.href} is ${mib(declared)} MiB, over the limit of ${mib(maxBytes)} MiB`);
  }
  const tmp = await cache.tmpPath();
  const hash = createHash('sha256');
  let size = 0;
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  const idle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      abort.abort();
      body.destroy(new Error(`GET ${url.href}: no data for ${timeoutS} s`));
    }, timeoutS * 1000);
  };
  idle();
  body.on('data', (chunk: Buffer) => {
    idle();
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
  } finally {
    clearTimeout(timer);
  }
  const sha256 = hash.digest('hex');
  await cache.remember(url, { etag: res.headers.get('etag') ?? undefined, sha256, size });
  return { path: tmp, size, sha256 };
}

export async function stageS3(
  deps: ActivityDeps,
  cache: BlobCache,
  source: string,
  maxBytes: number,
  format: DatasetFormat,
): Promise<StagedFile[]> {
  const { bucket, key } = parseS3Uri(source, { field: 'dataset.source', requireKey: false });
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const entries = (await deps.store.list(bucket, prefix)).filter((e) => {
    const name = e.key.slice(prefix.length);
    return !name.split('/').some((seg) => seg.startsWith('.')) && isDatasetFile(format, name);
  });
  if (entries.length === 0) {
    throw fail(Failure.NotFound, `dataset.source ${source}: no ${format} dataset files under this prefix`);
  }
  const total = entries.reduce((n, e) => n + e.size, 0);
  checkTotal(total, maxBytes, source);
  const files: StagedFile[] = [];
  for (const e of entries) {
    const name = safeRelativeName(e.key.slice(prefix.length), source);
    const tmp = await cache.tmpPath();
    await deps.store.getFile(bucket, e.key, tmp);
    const sha256 = await sha256File(tmp);
    files.push({ name, path: tmp, size: e.size, sha256 });
    heartbeat({ downloaded: name });
  }
  return files;
}
