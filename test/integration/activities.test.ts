// The pipeline's I/O activities against the runner's real S3 store (SeaweedFS) and a local node:http server:
// fetchDataset (local folder, HTTP, S3), materializeDataset, promoteArtifact and writeReport, each inside
// MockActivityEnvironment (promote's with the Temporal run id under test).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import * as datasets from '../../activities/fetch-dataset';
import { readPointer, writeModel } from '../../activities/models';
import { promoteArtifact } from '../../activities/promote';
import { writeReport } from '../../activities/report';
import { Failure } from '../../schemas/failures';
import type {
  DatasetRef,
  GateDecision,
  ModelRef,
  PromoteResult,
  ReportResult,
  RunSummary,
} from '../../schemas/payloads';
import type { Spec } from '../../schemas/spec';
import { parseS3Uri } from '../../storage/object-store';
import type { ObjectEntry } from '../../storage/object-store';
import { buildReferenceCnn } from '../../tensor/models';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';
import {
  depsFor,
  idxDataset,
  inActivity,
  metrics,
  recordWrites,
  serveFiles,
  sha256,
  specFor,
  tempDir,
  writeFiles,
} from '../unit/activities/helpers';
import type { FileServer } from '../unit/activities/helpers';

const fetchDataset = inActivity(datasets.fetchDataset);
const materializeDataset = inActivity(datasets.materializeDataset);

const store = storeFromEnv();
const bucket = uniqueName('act').toLowerCase();
const files = idxDataset({ gzip: 'train' });
const gzFiles = idxDataset({ gzip: 'all' });

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
async function folder(name: string): Promise<string> {
  const dir = join(tmp.dir, `${name}-${n++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

before(async () => {
  tmp = await tempDir('tempered-act-int-');
  await store.ensureBucket(bucket);
});
after(async () => {
  await tmp.cleanup();
});

/** What the store holds under `prefix`: key, size, etag and time, to compare before and after. */
const snapshot = async (prefix = '') =>
  (await store.list(bucket, prefix)).map((e: ObjectEntry) => ({ ...e, lastModified: e.lastModified.getTime() }));

const hashOf = (ref: DatasetRef) => parseS3Uri(ref.key).key.replace(/^datasets\//, '');

async function rejectsWith(p: Promise<unknown>, type: Failure): Promise<ApplicationFailure> {
  const err = await p.then(
    () => assert.fail(`expected ${type}, but it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  assert.equal(err.type, type, err.message);
  assert.equal(err.nonRetryable, true);
  return err;
}

describe('fetchDataset on the real store', () => {
  let localRef: DatasetRef;
  let localSrc: string;
  let localCache: string;

  it('local folder: describes the dataset; blobs and manifest land under blobs/sha256/ and datasets/<hash>/', async () => {
    localSrc = await folder('fashion');
    await writeFiles(localSrc, files);
    localCache = await folder('cache');
    const ref = await fetchDataset(depsFor(store, localCache), {
      workflowId: 'it',
      spec: specFor({ source: localSrc }, { bucket }),
    });
    localRef = ref;
    assert.deepEqual(ref.counts, { train: 20, test: 10, classes: 10 });
    assert.deepEqual(ref.imageShape, [28, 28, 1]);
    assert.deepEqual(ref.sha256s, Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha256(v)])));
    assert.match(ref.key, new RegExp(`^s3://${bucket}/datasets/[0-9a-f]{64}$`));

    const hash = hashOf(ref);
    const manifest = await store.getJson<{ format: string; files: { name: string; sha256: string; size: number }[] }>(
      bucket,
      `datasets/${hash}/manifest.json`,
    );
    assert.equal(manifest.format, 'idx');
    assert.deepEqual(
      manifest.files,
      Object.entries(files)
        .map(([name, b]) => ({ name, sha256: sha256(b), size: b.length }))
        .sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
    for (const [name, b] of Object.entries(files)) {
      assert.deepEqual(await store.getBytes(bucket, `blobs/sha256/${sha256(b)}`), b, name);
    }
  });

  it('local folder again: same key, nothing written, every object unchanged', async () => {
    const before = await snapshot();
    await new Promise((r) => setTimeout(r, 1100)); // a re-upload would show in lastModified (1 s resolution)
    const { store: spy, writes } = recordWrites(store);
    const ref = await fetchDataset(depsFor(spy, localCache), {
      workflowId: 'it',
      spec: specFor({ source: localSrc }, { bucket }),
    });
    assert.equal(ref.key, localRef.key);
    assert.deepEqual(writes, []);
    assert.deepEqual(await snapshot(), before);
    // A fresh cache: the files are hashed again but the store already has them.
    const again = recordWrites(store);
    const ref2 = await fetchDataset(depsFor(again.store, await folder('cache')), {
      workflowId: 'it',
      spec: specFor({ source: localSrc }, { bucket }),
    });
    assert.equal(ref2.key, localRef.key);
    assert.deepEqual(again.writes, []);
    assert.deepEqual(await snapshot(), before);
  });

  it('a blob already stored is not uploaded again; a file the format does not read is not uploaded at all', async () => {
    const src = await folder('more');
    await writeFiles(src, { ...files, 'extra.txt': Buffer.from('notes') });
    const { store: spy, writes } = recordWrites(store);
    const ref = await fetchDataset(depsFor(spy, await folder('cache')), {
      workflowId: 'it',
      spec: specFor({ source: src }, { bucket }),
    });
    assert.equal(ref.key, localRef.key, 'extra.txt is not part of the dataset');
    assert.deepEqual(writes, [], `nothing uploaded (not ${sha256(Buffer.from('notes'))})`);
  });

  describe('HTTP source (node:http on 127.0.0.1 with ETags)', () => {
    let server: FileServer;
    before(async () => {
      server = await serveFiles(gzFiles);
    });
    after(async () => {
      await server.close();
    });

    it('first fetch GETs each file; the same cache then sees 304s; pinned hashes make no request', async () => {
      const cache = await folder('http-cache');
      const spec = specFor({ source: server.url }, { bucket });
      const first = await fetchDataset(depsFor(store, cache), { workflowId: 'it', spec });
      assert.deepEqual(first.counts, { train: 20, test: 10, classes: 10 });
      assert.deepEqual(
        server.log.map((l) => l.status),
        [200, 200, 200, 200],
      );
      assert.deepEqual(
        await store.getBytes(bucket, `blobs/sha256/${sha256(gzFiles['t10k-images-idx3-ubyte.gz'])}`),
        gzFiles['t10k-images-idx3-ubyte.gz'],
      );

      const before = await snapshot();
      const second = await fetchDataset(depsFor(store, cache), { workflowId: 'it', spec });
      assert.equal(second.key, first.key);
      assert.equal(server.count(200), 4, 'no second full GET');
      assert.equal(server.count(304), 4);
      assert.deepEqual(await snapshot(), before);

      const sha = Object.fromEntries(Object.entries(gzFiles).map(([k, v]) => [k, sha256(v)]));
      const seen = server.log.length;
      const pinned = await fetchDataset(depsFor(store, cache), {
        workflowId: 'it',
        spec: specFor({ source: server.url, sha256: sha }, { bucket }),
      });
      assert.equal(pinned.key, first.key);
      assert.equal(server.log.length, seen, 'no request at all');
    });

    it('a pinned name like ../x is refused as path traversal', async () => {
      const seen = server.log.length;
      const err = await rejectsWith(
        fetchDataset(depsFor(store, await folder('cache')), {
          workflowId: 'it',
          spec: specFor({ source: server.url, sha256: { '../x': 'ab'.repeat(32) } }, { bucket }),
        }),
        Failure.CorruptDataset,
      );
      assert.match(err.message, /traversal/);
      assert.equal(server.log.length, seen);
    });
  });

  it('S3 source: the files under s3://bucket/raw/fmnist/ give the same dataset as the local folder', async () => {
    for (const [name, b] of Object.entries(files)) await store.putBytes(bucket, `raw/fmnist/${name}`, b);
    const ref = await fetchDataset(depsFor(store, await folder('cache')), {
      workflowId: 'it',
      spec: specFor({ source: `s3://${bucket}/raw/fmnist/` }, { bucket }),
    });
    assert.equal(ref.key, localRef.key);
    assert.deepEqual(ref.sha256s, localRef.sha256s);
    assert.deepEqual(ref.counts, localRef.counts);
    assert.equal(ref.classNames?.[0], '0', 'no "fashion" in the source: digit class names');
  });

  it('S3 source with no objects is NotFound', async () => {
    await rejectsWith(
      fetchDataset(depsFor(store, await folder('cache')), {
        workflowId: 'it',
        spec: specFor({ source: `s3://${bucket}/raw/nothing-here/` }, { bucket }),
      }),
      Failure.NotFound,
    );
  });

  it('a wrong sha256 is ChecksumMismatch naming the file, expected and actual hash; nothing is published', async () => {
    const before = await snapshot();
    const wrong = 'cd'.repeat(32);
    const err = await rejectsWith(
      fetchDataset(depsFor(store, await folder('cache')), {
        workflowId: 'it',
        spec: specFor({ source: localSrc, sha256: { 'train-images-idx3-ubyte.gz': wrong } }, { bucket }),
      }),
      Failure.ChecksumMismatch,
    );
    assert.match(err.message, /train-images-idx3-ubyte\.gz/);
    assert.ok(err.message.includes(wrong));
    assert.ok(err.message.includes(sha256(files['train-images-idx3-ubyte.gz'])));
    assert.deepEqual(await snapshot(), before);
  });

  it('too large for deps.maxDatasetMiB is DatasetTooLarge; a missing folder is NotFound', async () => {
    await rejectsWith(
      fetchDataset(depsFor(store, await folder('cache'), { maxDatasetMiB: 0.001 }), {
        workflowId: 'it',
        spec: specFor({ source: localSrc }, { bucket }),
      }),
      Failure.DatasetTooLarge,
    );
    await rejectsWith(
      fetchDataset(depsFor(store, await folder('cache')), {
        workflowId: 'it',
        spec: specFor({ source: join(tmp.dir, 'missing') }, { bucket }),
      }),
      Failure.NotFound,
    );
  });

  it('local folder refusals: a symlink out, a FIFO, a truncated IDX file; nothing is published', async () => {
    const before = await snapshot();
    const spec = (source: string) => specFor({ source }, { bucket });
    const outside = await folder('outside');
    await writeFile(join(outside, 'secret'), 'secret');
    const linked = await folder('linked');
    const { 't10k-labels-idx1-ubyte': _labels, ...rest } = files;
    await writeFiles(linked, rest);
    // A name the format reads links out (other names are not read at all).
    await symlink(join(outside, 'secret'), join(linked, 't10k-labels-idx1-ubyte'));
    const e1 = await rejectsWith(
      fetchDataset(depsFor(store, await folder('cache')), { workflowId: 'it', spec: spec(linked) }),
      Failure.CorruptDataset,
    );
    assert.match(e1.message, /t10k-labels-idx1-ubyte.*links outside/);

    const fifo = await folder('fifo');
    await writeFiles(fifo, files);
    execFileSync('mkfifo', [join(fifo, 'pipe')]);
    const e2 = await rejectsWith(
      fetchDataset(depsFor(store, await folder('cache')), { workflowId: 'it', spec: spec(fifo) }),
      Failure.CorruptDataset,
    );
    assert.match(e2.message, /pipe.*not a regular file/);

    const cut = await folder('cut');
    await writeFiles(cut, files);
    await truncate(join(cut, 't10k-labels-idx1-ubyte'), 8 + 3);
    const e3 = await rejectsWith(
      fetchDataset(depsFor(store, await folder('cache')), { workflowId: 'it', spec: spec(cut) }),
      Failure.CorruptDataset,
    );
    assert.match(e3.message, /t10k-labels-idx1-ubyte.*truncated/);
    assert.deepEqual(await snapshot(), before);
  });

  describe('materializeDataset', () => {
    it('rebuilds the same tree in a fresh cache from the store', async () => {
      const root = await materializeDataset(depsFor(store, await folder('fresh')), localRef);
      const names = (await readdir(root)).filter((f) => !f.startsWith('.')).sort();
      assert.deepEqual(names, Object.keys(files).sort());
      for (const name of names) assert.deepEqual(await readFile(join(root, name)), files[name], name);
    });

    it('a corrupt blob in the store is an error naming the file', async () => {
      const name = 'train-labels-idx1-ubyte.gz';
      const key = `blobs/sha256/${sha256(files[name])}`;
      await store.putBytes(bucket, key, Buffer.from('not the labels'));
      try {
        await assert.rejects(
          materializeDataset(depsFor(store, await folder('fresh')), localRef),
          new RegExp(`${name.replace(/\./g, '\\.')}.*hashes to ${sha256(Buffer.from('not the labels'))}`),
        );
      } finally {
        await store.putBytes(bucket, key, files[name]);
      }
      // Restored: a fresh cache works again.
      await materializeDataset(depsFor(store, await folder('fresh')), localRef);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('promoteArtifact and writeReport on the real store', () => {
  const modelName = uniqueName('m').toLowerCase().slice(0, 40);
  let spec: Spec;
  let model: ModelRef & { files: Record<string, { sha256: string; bytes: number }> };
  let stored: Record<string, Buffer>;
  const baseline = metrics(0.874, 0.018);
  const hardened = metrics(0.792, 0.517);
  const passed: GateDecision = { passed: true, reasons: ['robust 51.7% ≥ 40.0%'], decidedBy: 'gate' };
  const rejected: GateDecision = { passed: false, reasons: ['robust 1.8% < 40.0%'], decidedBy: 'gate' };
  const root = `models/${modelName}`;
  const results: Record<string, PromoteResult> = {};

  const promote = (runId: string, decision: GateDecision): Promise<PromoteResult> =>
    new MockActivityEnvironment({ workflowExecution: { workflowId: `harden-${modelName}`, runId } }).run(
      promoteArtifact,
      depsFor(store, tmp.dir),
      { workflowId: `harden-${modelName}`, spec, model, decision, metrics: hardened, baseline },
    ) as Promise<PromoteResult>;

  before(async () => {
    spec = specFor({ source: '/data/fashion-mnist' }, { bucket, modelName });
    const m = buildReferenceCnn({ seed: 7 });
    try {
      model = await writeModel(store, m, bucket, `runs/harden-${modelName}/r0/hardened/`, {
        architecture: 'reference-cnn',
      });
    } finally {
      m.dispose();
    }
    stored = {};
    for (const name of Object.keys(model.files))
      stored[name] = await store.getBytes(bucket, `runs/harden-${modelName}/r0/hardened/${name}`);
  });

  it('a passed gate stores v1 (model.json, weights.bin, manifest.json) and points production at it', async () => {
    const r = await promote('r1', passed);
    results.r1 = r;
    assert.deepEqual(r, {
      uri: `s3://${bucket}/${root}/versions/v1/`,
      version: 'v1',
      promoted: true,
      productionUri: `s3://${bucket}/${root}/production.json`,
    });
    const keys = (await store.list(bucket, `${root}/versions/`)).map((e) => e.key);
    assert.deepEqual(
      keys,
      ['manifest.json', 'model.json', 'weights.bin'].map((f) => `${root}/versions/v1/${f}`),
    );

    const text = (await store.getBytes(bucket, `${root}/versions/v1/manifest.json`)).toString('utf8');
    const { secretKey } = stackFromEnv().s3;
    assert.ok(secretKey.length >= 8);
    assert.ok(!text.includes(secretKey), 'the S3 secret key must not be in the manifest');
    const manifest = JSON.parse(text) as {
      model: { version: string; uri: string };
      run: { runId: string; promotedFrom: string };
      spec: Spec;
      metrics: { baseline: unknown; hardened: unknown };
      gate: GateDecision;
      files: Record<string, { sha256: string; bytes: number }>;
    };
    assert.equal(manifest.model.version, 'v1');
    assert.equal(manifest.run.runId, 'r1');
    assert.equal(manifest.run.promotedFrom, model.uri);
    assert.deepEqual(manifest.spec, JSON.parse(JSON.stringify(spec)));
    assert.deepEqual(manifest.metrics, { baseline, hardened });
    assert.deepEqual(manifest.gate, passed);
    assert.deepEqual(Object.keys(manifest.files).sort(), ['model.json', 'weights.bin']);
    for (const [name, f] of Object.entries(manifest.files)) {
      const bytes = await store.getBytes(bucket, `${root}/versions/v1/${name}`);
      assert.equal(f.sha256, sha256(bytes), `${name}: manifest hash = stored bytes`);
      assert.equal(f.bytes, bytes.length);
      assert.deepEqual(bytes, stored[name], `${name}: the promoted model's bytes`);
    }

    const pointer = await readPointer(store, spec);
    assert.equal(pointer?.version, 'v1');
    assert.equal(pointer?.uri, r.uri);
    assert.equal(pointer?.runId, 'r1');
  });

  it('repeating the same run (same runId) finds v1 again: one version, pointer untouched', async () => {
    const before = await snapshot(root);
    await new Promise((r) => setTimeout(r, 1100));
    const r = await promote('r1', passed);
    assert.deepEqual(r, results.r1);
    assert.deepEqual(await snapshot(root), before, 'nothing rewritten');
  });

  it('a second run makes v2 and moves production to it', async () => {
    const r = await promote('r2', passed);
    results.r2 = r;
    assert.equal(r.version, 'v2');
    assert.equal(r.promoted, true);
    assert.equal((await readPointer(store, spec))?.version, 'v2');
    assert.ok(await store.exists(bucket, `${root}/versions/v1/manifest.json`), 'v1 stays');
  });

  it('a failed gate stores the version but does not move production', async () => {
    const pointer = await store.getBytes(bucket, `${root}/production.json`);
    const r = await promote('r3', rejected);
    assert.deepEqual(r, { uri: `s3://${bucket}/${root}/versions/v3/`, version: 'v3', promoted: false });
    assert.ok(await store.exists(bucket, `${root}/versions/v3/weights.bin`));
    const manifest = await store.getJson<{ gate: GateDecision }>(bucket, `${root}/versions/v3/manifest.json`);
    assert.equal(manifest.gate.passed, false);
    assert.deepEqual(await store.getBytes(bucket, `${root}/production.json`), pointer);
  });

  it('a promotion that crashed after reserving still holds its version number', async () => {
    // r4 reserved v4 and died before writing a file; r5 must not take v4.
    await store.putJson(bucket, `${root}/promotions/r4.json`, {
      version: 'v4',
      workflowId: 'w',
      runId: 'r4',
      reservedAt: new Date().toISOString(),
    });
    assert.equal((await promote('r5', passed)).version, 'v5');
    const resumed = await promote('r4', passed);
    assert.equal(resumed.version, 'v4');
    assert.ok(await store.exists(bucket, `${root}/versions/v4/manifest.json`));
  });

  // Two runs of one model promoting at the same moment both list the versions before either reserves one, so
  // both reserve the same number and the second finds the first's manifest: it "promotes" the other run's model.
  // reserveVersion re-reads the reservations after writing its own: the earlier one keeps the number.
  it('two runs promoting at once get different versions', async () => {
    const [a, b] = await Promise.all([promote('race-a', rejected), promote('race-b', rejected)]);
    assert.notEqual(a.version, b.version);
  });

  const summaryFor = (artifact?: PromoteResult): RunSummary => ({
    status: 'completed',
    workflowId: `harden-${modelName}`,
    modelName,
    stage: 'done',
    baseline: { clean: baseline.clean, robust: 0.018, robustByAttack: baseline.robust },
    hardened: { clean: hardened.clean, robust: 0.517, robustByAttack: hardened.robust },
    gate: passed,
    ...(artifact ? { artifact } : {}),
    checkpoints: 3,
    timings: { training: 12.5 },
    warnings: [],
  });

  it('writeReport puts report.html and metrics.json next to the version', async () => {
    const summary = summaryFor(results.r2);
    const r = await inActivity(writeReport, summary.workflowId)(depsFor(store, tmp.dir), {
      workflowId: summary.workflowId,
      spec,
      summary,
      baseline,
      hardened,
    });
    assert.equal(r.uri, `s3://${bucket}/${root}/versions/v2/report.html`);
    const stat = await store.stat(bucket, `${root}/versions/v2/report.html`);
    assert.match(stat.contentType ?? '', /^text\/html/);
    const html = (await store.getBytes(bucket, `${root}/versions/v2/report.html`)).toString('utf8');
    assert.match(html, /^<!doctype html>/i);
    assert.match(html, /<\/html>\s*$/);
    for (const pct of ['87.4', '79.2', '51.7', '1.8']) assert.ok(html.includes(pct), `report shows ${pct}%`);
    assert.ok(html.includes(modelName));
    const back = await store.getJson(bucket, `${root}/versions/v2/metrics.json`);
    assert.deepEqual(back, JSON.parse(JSON.stringify({ summary, baseline, hardened })));
  });

  it('writeReport without a promoted artifact writes under the run prefix', async () => {
    const summary = summaryFor();
    const r = (await new MockActivityEnvironment({
      workflowExecution: { workflowId: summary.workflowId, runId: 'r9' },
    }).run(writeReport, depsFor(store, tmp.dir), {
      workflowId: summary.workflowId,
      spec,
      summary,
      baseline,
      hardened,
    })) as ReportResult;
    assert.equal(r.uri, `s3://${bucket}/runs/${summary.workflowId}/r9/report.html`);
    assert.ok(await store.exists(bucket, `runs/${summary.workflowId}/r9/metrics.json`));
  });
});
