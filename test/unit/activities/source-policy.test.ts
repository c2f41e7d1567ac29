// Source confinement: a dataset source reaches only what the worker's allow-list names; only the files the
// format reads leave a local folder; HTTP waits are bounded.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import * as datasets from '../../../activities/fetch-dataset';
import { isSpecialAddress } from '../../../activities/source-policy';
import type { SourcePolicy } from '../../../activities/source-policy';
import { Failure } from '../../../schemas/failures';
import { depsFor, idxDataset, inActivity, memoryStore, serveFiles, specFor, tempDir, writeFiles } from './helpers';

// Activities run inside an activity context, as on a worker.
const fetchDataset = inActivity(datasets.fetchDataset);

const BUCKET = 'unit-confined';
let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
async function folder(name: string): Promise<string> {
  const dir = join(tmp.dir, `${name}-${n++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}
before(async () => (tmp = await tempDir('tempered-policy-')));
after(() => tmp.cleanup());

const policy = (p: Partial<SourcePolicy>): SourcePolicy => ({
  roots: [],
  buckets: [],
  hosts: ['*'],
  httpTimeoutS: 30,
  ...p,
});

async function refused(fn: () => Promise<unknown>, type: Failure, pattern: RegExp): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, type, err.message);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('dataset sources against the worker allow-list', () => {
  it('a local folder outside the roots is refused, one inside is read', async () => {
    const allowed = await folder('allowed');
    const src = join(allowed, 'fmnist');
    await mkdir(src);
    await writeFiles(src, idxDataset());
    const elsewhere = await folder('elsewhere');
    await writeFiles(elsewhere, idxDataset());
    const deps = depsFor(memoryStore(), await folder('cache'), { sources: policy({ roots: [allowed] }) });
    const run = (source: string) =>
      fetchDataset(deps, { workflowId: 'unit', spec: specFor({ source }, { bucket: BUCKET }) });
    await refused(() => run(elsewhere), Failure.AccessDenied, /outside the folders this worker reads datasets from/);
    await refused(() => run(join(allowed, '..', elsewhere.split('/').pop()!)), Failure.AccessDenied, /outside/);
    assert.equal((await run(src)).counts.train, 20);
  });

  it('an unlisted bucket is refused before anything is listed', async () => {
    const store = memoryStore();
    const deps = depsFor(store, await folder('cache'), { sources: policy({ buckets: ['datasets'] }) });
    await refused(
      () =>
        fetchDataset(deps, {
          workflowId: 'unit',
          spec: specFor({ source: 's3://private-keys/x/' }, { bucket: BUCKET }),
        }),
      Failure.AccessDenied,
      /bucket private-keys is not one this worker reads datasets from/,
    );
  });

  it('http to loopback, link-local (cloud metadata) and private addresses is refused unless the host is listed', async () => {
    const server = await serveFiles(idxDataset({ gzip: 'all' }));
    try {
      const deps = (hosts: string[]) => depsFor(memoryStore(), tmp.dir + `/c${n++}`, { sources: policy({ hosts }) });
      const run = (hosts: string[], source: string) =>
        fetchDataset(deps(hosts), { workflowId: 'unit', spec: specFor({ source }, { bucket: BUCKET }) });
      await refused(() => run(['*'], server.url), Failure.AccessDenied, /resolves to 127\.0\.0\.1/);
      await refused(
        () => run(['*'], 'http://169.254.169.254/latest/meta-data/'),
        Failure.AccessDenied,
        /169\.254\.169\.254/,
      );
      await refused(() => run(['*'], 'http://10.1.2.3/x/'), Failure.AccessDenied, /10\.1\.2\.3/);
      await refused(
        () => run(['data.example'], server.url),
        Failure.AccessDenied,
        /is not one this worker downloads from/,
      );
      assert.equal(server.count(200), 0, 'nothing was requested');
      const host = new URL(server.url).host;
      assert.equal((await run([host], server.url)).counts.train, 20);
    } finally {
      await server.close();
    }
  });

  it('a redirect to a refused address is refused at the hop', async () => {
    const redirector = createServer((_req, res) =>
      res.writeHead(302, { location: 'http://169.254.169.254/latest/' }).end(),
    );
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    try {
      await refused(
        () =>
          fetchDataset(depsFor(memoryStore(), tmp.dir + `/c${n++}`, { sources: policy({ hosts: [host, '*'] }) }), {
            workflowId: 'unit',
            spec: specFor({ source: `http://${host}/ds/` }, { bucket: BUCKET }),
          }),
        Failure.AccessDenied,
        /169\.254\.169\.254/,
      );
    } finally {
      redirector.closeAllConnections();
      redirector.close();
    }
  });

  it('a server that never answers times out (retryable), naming the URL', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const started = Date.now();
      await assert.rejects(
        fetchDataset(
          depsFor(memoryStore(), tmp.dir + `/c${n++}`, { sources: policy({ hosts: [host], httpTimeoutS: 1 }) }),
          {
            workflowId: 'unit',
            spec: specFor({ source: `http://${host}/ds/` }, { bucket: BUCKET }),
          },
        ),
        /GET http:\/\/127\.0\.0\.1:\d+\/ds\/train-images-idx3-ubyte\.gz: no response within 1 s/,
      );
      assert.ok(Date.now() - started < 10_000);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('knows the special ranges', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
    ]) {
      assert.ok(isSpecialAddress(a), a);
    }
    for (const a of ['8.8.8.8', '151.101.1.1', '2606:4700::1111']) assert.ok(!isSpecialAddress(a), a);
  });
});

describe('only the files the format reads leave a local folder', () => {
  it('a secrets.txt and keys/id_rsa beside the IDX files are neither read nor uploaded', async () => {
    const src = await folder('with-secrets');
    await writeFiles(src, idxDataset());
    await writeFile(join(src, 'secrets.txt'), 'AWS_SECRET=hunter2');
    await mkdir(join(src, 'keys'));
    await writeFile(join(src, 'keys', 'id_rsa'), '-----BEGIN OPENSSH PRIVATE KEY-----');
    const store = memoryStore();
    const ref = await fetchDataset(depsFor(store, await folder('cache')), {
      workflowId: 'unit',
      spec: specFor({ source: src }, { bucket: BUCKET }),
    });
    assert.deepEqual(Object.keys(ref.sha256s).sort(), Object.keys(idxDataset()).sort());
    for (const [key, bytes] of store.objects) {
      assert.ok(
        !bytes.toString('latin1').includes('hunter2') && !bytes.toString('latin1').includes('PRIVATE KEY'),
        key,
      );
    }
  });
});
