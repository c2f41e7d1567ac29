// fetchDataset / materializeDataset without servers: an in-memory store, local folders and a node:http server
// started here. The real S3 store is exercised by test/integration/activities.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import * as datasets from '../../../activities/fetch-dataset';
import { Failure } from '../../../schemas/failures';
import type { DatasetRef } from '../../../schemas/payloads';
import type { SpecInput } from '../../../schemas/spec';
import {
  depsFor,
  idxDataset,
  inActivity,
  memoryStore,
  serveFiles,
  sha256,
  specFor,
  tempDir,
  writeFiles,
} from './helpers';
import type { FileServer } from './helpers';

// Activities run inside an activity context, as on a worker.
const fetchDataset = inActivity(datasets.fetchDataset);
const materializeDataset = inActivity(datasets.materializeDataset);

const BUCKET = 'unit-datasets';

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
/** A new empty folder under the test's temp dir. */
async function folder(name: string): Promise<string> {
  const dir = join(tmp.dir, `${name}-${n++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

before(async () => {
  tmp = await tempDir();
});
after(async () => {
  await tmp.cleanup();
});

/** Runs `fn` and returns the ApplicationFailure it must throw. */
async function failure(fn: () => Promise<unknown>, type: Failure): Promise<ApplicationFailure> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, type, `failure type (message: ${err.message})`);
    assert.equal(err.nonRetryable, true, 'a permanent failure is not retried');
    return err;
  }
  assert.fail(`expected a ${type} failure, but it succeeded`);
}

const fetchFrom = (source: string, cacheDir: string, dataset: Partial<SpecInput['dataset']> = {}, maxMiB?: number) =>
  fetchDataset(depsFor(memoryStore(), cacheDir, maxMiB === undefined ? {} : { maxDatasetMiB: maxMiB }), {
    workflowId: 'unit',
    spec: specFor({ source, ...dataset }, { bucket: BUCKET }),
  });

describe('fetchDataset from a local folder (memory store)', () => {
  it('describes the dataset and publishes blobs and the manifest under datasets/<hash>/', async () => {
    const src = await folder('fashion-src');
    const files = idxDataset();
    await writeFiles(src, files);
    const store = memoryStore();
    const ref = await fetchDataset(depsFor(store, await folder('cache')), {
      workflowId: 'unit',
      spec: specFor({ source: src }, { bucket: BUCKET }),
    });
    assert.deepEqual(ref.counts, { train: 20, test: 10, classes: 10 });
    assert.deepEqual(ref.imageShape, [28, 28, 1]);
    assert.equal(ref.format, 'idx');
    assert.equal(ref.classNames?.[9], 'Ankle boot', 'a folder named fashion gets Fashion-MNIST class names');
    assert.deepEqual(ref.sha256s, Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha256(v)])));
    const m = /^s3:\/\/unit-datasets\/datasets\/([0-9a-f]{64})$/.exec(ref.key);
    assert.ok(m, ref.key);
    const keys = [...store.objects.keys()].sort();
    const blobs = Object.values(files).map((b) => `${BUCKET}/blobs/sha256/${sha256(b)}`);
    assert.deepEqual(keys, [...blobs, `${BUCKET}/datasets/${m[1]}/manifest.json`].sort());
    for (const b of Object.values(files)) assert.deepEqual(store.objects.get(`${BUCKET}/blobs/sha256/${sha256(b)}`), b);
  });

  it('the same files give the same key whichever folder holds them', async () => {
    const a = await folder('a');
    const b = await folder('b');
    await writeFiles(a, idxDataset());
    await writeFiles(b, idxDataset());
    const [ra, rb] = [await fetchFrom(a, await folder('cache')), await fetchFrom(b, await folder('cache'))];
    assert.equal(ra.key, rb.key);
    const c = await folder('c');
    await writeFiles(c, idxDataset({ test: 11 }));
    assert.notEqual((await fetchFrom(c, await folder('cache'))).key, ra.key, 'other bytes, other key');
  });

  it('a missing folder is NotFound', async () => {
    const err = await failure(() => fetchFrom(join(tmp.dir, 'no-such-folder'), tmp.dir), Failure.NotFound);
    assert.match(err.message, /no-such-folder.*does not exist/);
  });

  it('an empty folder is NotFound', async () => {
    await failure(async () => fetchFrom(await folder('empty'), await folder('cache')), Failure.NotFound);
  });

  it('a symlink pointing outside the folder is refused', async () => {
    const outside = await folder('outside');
    await writeFile(join(outside, 'secret'), 'top secret');
    const src = await folder('src');
    const { 't10k-labels-idx1-ubyte': _labels, ...rest } = idxDataset();
    await writeFiles(src, rest);
    // A name the format reads, so the stager must look at it (other names are not read at all).
    await symlink(join(outside, 'secret'), join(src, 't10k-labels-idx1-ubyte'));
    const err = await failure(async () => fetchFrom(src, await folder('cache')), Failure.CorruptDataset);
    assert.match(err.message, /t10k-labels-idx1-ubyte.*links outside/);
  });

  it('a symlink inside the folder is followed', async () => {
    const src = await folder('src');
    const files = idxDataset();
    await mkdir(join(src, 'real'));
    await writeFiles(join(src, 'real'), files);
    for (const name of Object.keys(files)) await symlink(join(src, 'real', name), join(src, name));
    const ref = await fetchFrom(src, await folder('cache'));
    assert.equal(ref.counts.train, 20);
  });

  it('a FIFO is refused (not read: that would block)', async () => {
    const src = await folder('src');
    await writeFiles(src, idxDataset());
    execFileSync('mkfifo', [join(src, 'pipe')]);
    const err = await failure(async () => fetchFrom(src, await folder('cache')), Failure.CorruptDataset);
    assert.match(err.message, /pipe.*not a regular file/);
  });

  it('a FIFO in a hidden folder is refused too (walked before dot names are skipped)', async () => {
    const src = await folder('src');
    await writeFiles(src, idxDataset());
    await mkdir(join(src, '.cache'));
    execFileSync('mkfifo', [join(src, '.cache', 'pipe')]);
    await failure(async () => fetchFrom(src, await folder('cache')), Failure.CorruptDataset);
  });

  it('a truncated test IDX file is CorruptDataset naming the file', async () => {
    const src = await folder('src');
    await writeFiles(src, idxDataset());
    await truncate(join(src, 't10k-images-idx3-ubyte'), 16 + 784 * 5);
    const err = await failure(async () => fetchFrom(src, await folder('cache')), Failure.CorruptDataset);
    assert.match(err.message, /t10k-images-idx3-ubyte.*truncated/);
  });

  it('a truncated train IDX file is CorruptDataset naming the file', async () => {
    const src = await folder('src');
    await writeFiles(src, idxDataset({ gzip: 'none' }));
    await truncate(join(src, 'train-images-idx3-ubyte'), 16 + 784 * 5);
    const err = await failure(async () => fetchFrom(src, await folder('cache')), Failure.CorruptDataset);
    assert.match(err.message, /train-images-idx3-ubyte.*truncated/);
  });

  it('over deps.maxDatasetMiB is DatasetTooLarge', async () => {
    const src = await folder('src');
    await writeFiles(src, idxDataset());
    const err = await failure(async () => fetchFrom(src, await folder('cache'), {}, 0.001), Failure.DatasetTooLarge);
    assert.match(err.message, /limit/);
  });

  it('a wrong pinned sha256 is ChecksumMismatch naming the file, expected and actual hash', async () => {
    const src = await folder('src');
    const files = idxDataset();
    await writeFiles(src, files);
    const name = 't10k-labels-idx1-ubyte';
    const wrong = 'ab'.repeat(32);
    const err = await failure(
      async () => fetchFrom(src, await folder('cache'), { sha256: { [name]: wrong } }),
      Failure.ChecksumMismatch,
    );
    assert.ok(err.message.includes(name), err.message);
    assert.ok(err.message.includes(wrong), err.message);
    assert.ok(err.message.includes(sha256(files[name])), err.message);
  });

  it('the right pinned sha256 (upper-case hex) passes', async () => {
    const src = await folder('src');
    const files = idxDataset();
    await writeFiles(src, files);
    const pins = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha256(v).toUpperCase()]));
    const ref = await fetchFrom(src, await folder('cache'), { sha256: pins });
    assert.equal(ref.counts.test, 10);
  });
});

describe('fetchDataset over HTTP (memory store, local server)', () => {
  let server: FileServer;
  const files = idxDataset({ gzip: 'all' });
  before(async () => {
    server = await serveFiles(files);
  });
  after(async () => {
    await server.close();
  });

  it('fetches the standard names, then asks again with If-None-Match (304), and pinned hashes skip the network', async () => {
    const cache = await folder('cache');
    const start = server.log.length;
    const first = await fetchFrom(server.url, cache);
    assert.deepEqual(first.counts, { train: 20, test: 10, classes: 10 });
    assert.equal(server.count(200), 4);
    assert.equal(server.count(304), 0);

    const second = await fetchFrom(server.url, cache);
    assert.equal(second.key, first.key);
    assert.equal(server.count(200), 4, 'no second full GET');
    assert.equal(server.count(304), 4);

    const pinned = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha256(v)]));
    const before = server.log.length;
    const third = await fetchFrom(server.url, cache, { sha256: pinned });
    assert.equal(third.key, first.key);
    assert.equal(server.log.length, before, 'cached pinned files need no request at all');
    assert.equal(server.log.length - start, 8);
  });

  it('a fresh cache downloads again', async () => {
    const before = server.count(200);
    await fetchFrom(server.url, await folder('cache'));
    assert.equal(server.count(200) - before, 4);
  });

  it('a missing file is NotFound naming the URL', async () => {
    const err = await failure(
      async () => fetchFrom(server.url, await folder('cache'), { sha256: { 'nope.gz': 'ab'.repeat(32) } }),
      Failure.NotFound,
    );
    assert.match(err.message, /nope\.gz.*404/);
  });

  for (const name of ['../x', 'a/../../x', '/etc/passwd', 'a\\..\\x']) {
    it(`a pinned name ${JSON.stringify(name)} is refused before any request`, async () => {
      const before = server.log.length;
      const err = await failure(
        async () => fetchFrom(server.url, await folder('cache'), { sha256: { [name]: 'ab'.repeat(32) } }),
        Failure.CorruptDataset,
      );
      assert.match(err.message, /traversal|absolute|backslash/);
      assert.equal(server.log.length, before);
    });
  }

  it('a wrong pinned sha256 over HTTP is ChecksumMismatch', async () => {
    const pinned = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha256(v)]));
    pinned['train-labels-idx1-ubyte.gz'] = '0'.repeat(64);
    const err = await failure(
      async () => fetchFrom(server.url, await folder('cache'), { sha256: pinned }),
      Failure.ChecksumMismatch,
    );
    assert.match(err.message, /train-labels-idx1-ubyte\.gz: expected sha256 0{64}, got [0-9a-f]{64}/);
  });

  it('a file over the limit is DatasetTooLarge', async () => {
    await failure(async () => fetchFrom(server.url, await folder('cache'), {}, 0.0001), Failure.DatasetTooLarge);
  });
});

describe('materializeDataset (memory store)', () => {
  async function fetched(): Promise<{ ref: DatasetRef; store: ReturnType<typeof memoryStore>; src: string }> {
    const src = await folder('src');
    await writeFiles(src, idxDataset());
    const store = memoryStore();
    const ref = await fetchDataset(depsFor(store, await folder('cache')), {
      workflowId: 'unit',
      spec: specFor({ source: src }, { bucket: BUCKET }),
    });
    return { ref, store, src };
  }

  it('rebuilds the same tree in a fresh cache', async () => {
    const { ref, store, src } = await fetched();
    const root = await materializeDataset(depsFor(store, await folder('fresh')), ref);
    const names = (await readdir(root)).filter((f) => !f.startsWith('.')).sort();
    assert.deepEqual(names, (await readdir(src)).sort());
    for (const name of names) assert.deepEqual(await readFile(join(root, name)), await readFile(join(src, name)));
  });

  it('a corrupt blob is an error naming the file, and leaves no tree behind', async () => {
    const { ref, store } = await fetched();
    const blob = `${BUCKET}/blobs/sha256/${ref.sha256s['t10k-images-idx3-ubyte']}`;
    store.objects.set(blob, Buffer.from('garbage'));
    const fresh = await folder('fresh');
    await assert.rejects(materializeDataset(depsFor(store, fresh), ref), /t10k-images-idx3-ubyte.*hashes to/);
    const hash = ref.key.split('/').pop() as string;
    await assert.rejects(readFile(join(fresh, 'datasets', hash, '.complete')));
  });

  it('a missing manifest is NotFound', async () => {
    const { ref } = await fetched();
    await failure(async () => materializeDataset(depsFor(memoryStore(), await folder('fresh')), ref), Failure.NotFound);
  });
});
