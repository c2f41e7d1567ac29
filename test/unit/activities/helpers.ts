// Shared by the activity tests (unit and integration): tiny IDX datasets on disk, a local HTTP file server that
// counts its answers, an in-memory object store, and a store wrapper that records writes.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../../../activities/deps';
import type { Metrics } from '../../../schemas/payloads';
import { parseSpec } from '../../../schemas/spec';
import type { Spec, SpecInput } from '../../../schemas/spec';
import { ObjectNotFoundError } from '../../../storage/object-store';
import type { ObjectEntry, ObjectStore } from '../../../storage/object-store';

/**
 * `fn` as an activity runs it: each call inside its own `MockActivityEnvironment` of workflow `workflowId`, so
 * heartbeats, cancellation and the execution's ids behave as on a worker.
 */
export function inActivity<A extends unknown[], R>(fn: (...args: A) => Promise<R>, workflowId = 'unit') {
  return (...args: A): Promise<R> =>
    new MockActivityEnvironment({ workflowExecution: { workflowId, runId: 'unit-run' } }).run(fn, ...args);
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A fresh temp folder; call `cleanup` in `after`. */
export async function tempDir(prefix = 'tempered-act-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** IDX bytes: 0 0 0x08 ndims, big-endian dims, then data. */
export function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

function pair(count: number, side: number, salt: number): { images: Buffer; labels: Buffer } {
  const px = new Uint8Array(count * side * side);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7 + salt * 13) % 256;
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  return { images: idxBytes([count, side, side], px), labels: idxBytes([count], labels) };
}

/**
 * The four files of an MNIST-family dataset: 20 train and 10 test images of 28×28, labels i % 10. With
 * `gzip: 'all'` every file is gzipped (the standard `.gz` names HTTP fetches by default); with `'train'` only the
 * train files are, so a folder mixes both.
 */
export function idxDataset(
  options: { train?: number; test?: number; gzip?: 'all' | 'train' | 'none' } = {},
): Record<string, Buffer> {
  const { train = 20, test = 10, gzip = 'train' } = options;
  const tr = pair(train, 28, 1);
  const te = pair(test, 28, 2);
  const gz = (name: string, bytes: Buffer, yes: boolean) =>
    yes ? { [`${name}.gz`]: gzipSync(bytes) } : { [name]: bytes };
  return {
    ...gz('train-images-idx3-ubyte', tr.images, gzip !== 'none'),
    ...gz('train-labels-idx1-ubyte', tr.labels, gzip !== 'none'),
    ...gz('t10k-images-idx3-ubyte', te.images, gzip === 'all'),
    ...gz('t10k-labels-idx1-ubyte', te.labels, gzip === 'all'),
  };
}

export async function writeFiles(dir: string, files: Record<string, Uint8Array>): Promise<void> {
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
}

/** A spec whose dataset and artifacts are given; everything else default. */
export function specFor(dataset: SpecInput['dataset'], artifacts: SpecInput['artifacts'] = {}): Spec {
  return parseSpec({ version: 1, dataset, artifacts });
}

// ---------------------------------------------------------------------------------------------------------------

export interface FileServer {
  /** Base URL ending in `/ds/`. */
  url: string;
  /** Every answer: path and status. */
  log: { path: string; status: number }[];
  count(status: number): number;
  close(): Promise<void>;
}

/** Serves `files` under `/ds/` on 127.0.0.1 with strong ETags (the SHA-256), answering If-None-Match with 304. */
export async function serveFiles(files: Record<string, Uint8Array>): Promise<FileServer> {
  const log: { path: string; status: number }[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const name = path.startsWith('/ds/') ? path.slice('/ds/'.length) : undefined;
    const body = name !== undefined ? files[name] : undefined;
    const answer = (status: number) => log.push({ path, status });
    if (!body) {
      answer(404);
      res.writeHead(404).end('not found');
      return;
    }
    const etag = `"${sha256(body)}"`;
    if (req.headers['if-none-match'] === etag) {
      answer(304);
      res.writeHead(304, { etag }).end();
      return;
    }
    answer(200);
    res.writeHead(200, { etag, 'content-length': body.byteLength, 'content-type': 'application/octet-stream' });
    res.end(Buffer.from(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ds/`,
    log,
    count: (status) => log.filter((l) => l.status === status).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------

/** Wraps a store so every write (`put*`) is recorded as `<method> <key>`; reads pass through. */
export function recordWrites(store: ObjectStore): { store: ObjectStore; writes: string[] } {
  const writes: string[] = [];
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (/^put/.test(String(prop))) writes.push(`${String(prop)} ${String(args[1])}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: wrapped, writes };
}

/** An object store in memory, enough for the activities (no buckets to create, keys by bucket). */
export function memoryStore(): ObjectStore & { objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  const id = (bucket: string, key: string) => `${bucket}/${key}`;
  const get = (bucket: string, key: string) => {
    const b = objects.get(id(bucket, key));
    if (!b) throw new ObjectNotFoundError(bucket, key);
    return b;
  };
  const store = {
    objects,
    async ensureBucket() {},
    async putBytes(bucket: string, key: string, bytes: Uint8Array) {
      objects.set(id(bucket, key), Buffer.from(bytes));
    },
    async getBytes(bucket: string, key: string) {
      return get(bucket, key);
    },
    async putJson(bucket: string, key: string, value: unknown) {
      objects.set(id(bucket, key), Buffer.from(JSON.stringify(value)));
    },
    async getJson(bucket: string, key: string) {
      return JSON.parse(get(bucket, key).toString('utf8')) as unknown;
    },
    async exists(bucket: string, key: string) {
      return objects.has(id(bucket, key));
    },
    async stat(bucket: string, key: string) {
      const b = get(bucket, key);
      return { size: b.length, etag: sha256(b), lastModified: new Date(0), meta: {} };
    },
    async list(bucket: string, prefix = ''): Promise<ObjectEntry[]> {
      return [...objects.entries()]
        .filter(([k]) => k.startsWith(id(bucket, prefix)))
        .map(([k, b]) => ({
          key: k.slice(bucket.length + 1),
          size: b.length,
          etag: sha256(b),
          lastModified: new Date(0),
        }))
        .sort((a, b) => (a.key < b.key ? -1 : 1));
    },
    async putFile(bucket: string, key: string, path: string) {
      objects.set(id(bucket, key), await readFile(path));
    },
    async getFile(bucket: string, key: string, path: string) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, get(bucket, key));
    },
    async remove(bucket: string, key: string) {
      objects.delete(id(bucket, key));
    },
  };
  return store as unknown as ObjectStore & { objects: Map<string, Buffer> };
}

/** Deps for a test: the store, a cache folder, nothing else. */
export function depsFor(store: ObjectStore, cacheDir: string, extra: Partial<ActivityDeps> = {}): ActivityDeps {
  return { store, cacheDir, packageVersion: '0.0.0-test', ...extra };
}

// ---------------------------------------------------------------------------------------------------------------

/** Metrics of an evaluation: clean accuracy and one attack. */
export function metrics(clean: number, robust: number): Metrics {
  return {
    clean,
    robust: [{ attack: 'pgd20', eps: 0.1, accuracy: robust }],
    epsCurve: [
      { eps: 0, accuracy: clean },
      { eps: 0.1, accuracy: robust },
    ],
    perClass: [],
    confusion: [],
    examples: [],
    images: 10,
    seconds: 1.5,
    backend: 'cpu',
  };
}
