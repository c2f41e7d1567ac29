// The worker's dataset caches under concurrency: any number of activities may fetch, materialise and decode the
// same dataset at once on a cold cache; every one gets a complete tree, none sees a race as corrupt data. And the
// heavy side's decoded-split cache is keyed by everything that decides the tensors (image size, class names).
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import sharp from 'sharp';
import { BlobCache } from '../../../activities/dataset-cache';
import * as splits from '../../../activities/datasets';
import * as datasets from '../../../activities/fetch-dataset';
import { Failure } from '../../../schemas/failures';
import { depsFor, idxDataset, inActivity, memoryStore, specFor, tempDir, writeFiles } from './helpers';

// Activities run inside an activity context, as on a worker.
const fetchDataset = inActivity(datasets.fetchDataset);
const materializeDataset = inActivity(datasets.materializeDataset);
const openSplit = inActivity(splits.openSplit);

const BUCKET = 'unit-cache';
const RUNS = 16;

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
async function folder(name: string): Promise<string> {
  const dir = join(tmp.dir, `${name}-${n++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}
before(async () => {
  tmp = await tempDir('tempered-cache-');
});
after(async () => {
  await tmp.cleanup();
});

/** Every file of a tree, read back, by name (the marker excluded). */
async function readTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(root)).filter((f) => !f.startsWith('.')).sort()) {
    out[name] = (await readFile(join(root, name))).toString('base64');
  }
  return out;
}

describe('the dataset cache under concurrency', () => {
  it(`${RUNS} fetches of one folder into one cold cache all succeed with one key`, async () => {
    const src = await folder('src');
    await writeFiles(src, idxDataset());
    const store = memoryStore();
    const cache = await folder('cache');
    const spec = specFor({ source: src }, { bucket: BUCKET });
    const refs = await Promise.all(
      Array.from({ length: RUNS }, () => fetchDataset(depsFor(store, cache), { workflowId: 'unit', spec })),
    );
    assert.equal(new Set(refs.map((r) => r.key)).size, 1);
    const leftovers = (await readdir(join(cache, 'datasets'))).filter((f) => f.endsWith('.part'));
    assert.deepEqual(leftovers, [], 'no private build folder is left behind');
  });

  it(`${RUNS} materialisations of one dataset into one cold cache each see the whole tree`, async () => {
    const src = await folder('src');
    await writeFiles(src, idxDataset());
    const store = memoryStore();
    const ref = await fetchDataset(depsFor(store, await folder('cache')), {
      workflowId: 'unit',
      spec: specFor({ source: src }, { bucket: BUCKET }),
    });
    const want = await readTree(src);
    const cold = await folder('cold');
    const trees = await Promise.all(
      Array.from({ length: RUNS }, async () => readTree(await materializeDataset(depsFor(store, cold), ref))),
    );
    for (const t of trees) assert.deepEqual(t, want);
  });

  it('a tree folder without its marker (a crash) is rebuilt, not trusted', async () => {
    const cacheDir = await folder('crash');
    const cache = new BlobCache(cacheDir);
    const blob = await cache.tmpPath();
    await writeFile(blob, 'bytes');
    const sha = 'ab'.repeat(32);
    await cache.adopt(blob, sha);
    const half = join(cacheDir, 'datasets', 'h1');
    await mkdir(half, { recursive: true });
    await writeFile(join(half, 'stray'), 'half-written');
    assert.equal(await cache.readyTree('h1'), undefined);
    const root = await cache.tree('h1', { format: 'idx', source: 'x', files: [{ name: 'f', sha256: sha, size: 5 }] });
    assert.deepEqual(await readTree(root), { f: Buffer.from('bytes').toString('base64') });
  });
});

describe('decoded splits on the heavy side', () => {
  it('two runs on one image folder at sizes 16 and 24 get images of their own size', async () => {
    const src = await folder('images');
    const png = (rgb: [number, number, number]) =>
      sharp({ create: { width: 20, height: 20, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
        .png()
        .toBuffer();
    for (const split of ['train', 'test']) {
      for (const [cls, rgb] of [
        ['cat', [200, 10, 10]],
        ['dog', [10, 200, 10]],
      ] as const) {
        await mkdir(join(src, split, cls), { recursive: true });
        for (let i = 0; i < 2; i++) await writeFile(join(src, split, cls, `${i}.png`), await png([...rgb]));
      }
    }
    const deps = depsFor(memoryStore(), await folder('cache'));
    for (const size of [16, 24, 16]) {
      const spec = specFor({ source: src, format: 'image-folder', imageSize: size }, { bucket: BUCKET });
      const ref = await fetchDataset(deps, { workflowId: 'unit', spec });
      const train = await openSplit(deps, ref, spec, 'train');
      assert.equal(train.height, size, `imageSize ${size}`);
      assert.equal(train.width, size);
    }
  });
});

describe('image-folder classes between splits', () => {
  const png = () =>
    sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 9, g: 9, b: 9 } } })
      .png()
      .toBuffer();
  async function imageFolder(train: string[], test: string[]): Promise<string> {
    const src = await folder('classes');
    for (const [split, classes] of [
      ['train', train],
      ['test', test],
    ] as const) {
      for (const c of classes) {
        await mkdir(join(src, split, c), { recursive: true });
        await writeFile(join(src, split, c, 'a.png'), await png());
      }
    }
    return src;
  }
  const fetchFolder = async (src: string) =>
    fetchDataset(depsFor(memoryStore(), await folder('cache')), {
      workflowId: 'unit',
      spec: specFor({ source: src, format: 'image-folder', imageSize: 8 }, { bucket: BUCKET }),
    });

  for (const [what, train, test] of [
    ['other names', ['cat', 'dog'], ['cat', 'zebra']],
    ['another count', ['cat', 'dog'], ['cat', 'dog', 'zebra']],
  ] as const) {
    it(`train and test with ${what} are refused once, naming both lists`, async () => {
      const src = await imageFolder([...train], [...test]);
      await assert.rejects(fetchFolder(src), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, Failure.CorruptDataset);
        assert.equal(err.nonRetryable, true);
        assert.ok(
          err.message.includes(`[${train.join(', ')}]`) && err.message.includes(`[${test.join(', ')}]`),
          err.message,
        );
        return true;
      });
    });
  }

  it('the same classes pass', async () => {
    const ref = await fetchFolder(await imageFolder(['cat', 'dog'], ['cat', 'dog']));
    assert.deepEqual(ref.classNames, ['cat', 'dog']);
  });
});
