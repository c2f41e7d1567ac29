// `tempered serve` against the real S3 store: the production pointer names v1, the server answers with v1; the
// pointer moves to v2 and the server follows while requests keep succeeding.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { buildReferenceCnn, saveModelToBytes } from '../../tensor/models';
import { binLink } from '../support/cli';
import { storeFromEnv, uniqueName } from '../support/stack';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const BUCKET = 'tempered';

function serve(args: string[]): {
  child: ChildProcessWithoutNullStreams;
  url: Promise<string>;
  stderr: () => string;
  exit: Promise<number | null>;
} {
  const child = spawn(binLink(), ['serve', ...args], {
    cwd: repo,
    env: process.env,
    stdio: 'pipe',
  });
  let err = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code} before listening:\n${err}`)));
  });
  url.catch(() => undefined); // awaited by the tests that expect a listening server
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, url, stderr: () => err, exit };
}

describe('tempered serve with the production pointer on S3', () => {
  const store = storeFromEnv();
  const name = uniqueName('serve').toLowerCase().slice(0, 40);
  const prefix = `models/${name}`;

  async function putVersion(version: string, seed: number) {
    const model = buildReferenceCnn({ seed });
    const files = await saveModelToBytes(model);
    model.dispose();
    for (const [file, bytes] of Object.entries(files))
      await store.putBytes(BUCKET, `${prefix}/versions/${version}/${file}`, bytes);
  }
  const movePointer = (version: string) =>
    store.putJson(BUCKET, `${prefix}/production.json`, {
      version,
      uri: `s3://${BUCKET}/${prefix}/versions/${version}/`,
      promotedAt: new Date().toISOString(),
    });

  before(async () => {
    await store.ensureBucket(BUCKET);
  });

  test('a missing pointer is a clear one-line failure', async () => {
    const s = serve(['--name', `${name}-none`, '--port', '0']);
    const code = await s.exit;
    assert.equal(code, 1);
    assert.match(
      s.stderr(),
      new RegExp(`tempered serve: s3://tempered/models/${name}-none/production\\.json: no production pointer`),
    );
  });

  test('serves v1, follows the pointer to v2 without failing a request, survives a broken pointer', async () => {
    await putVersion('v1', 1);
    await movePointer('v1');
    const s = serve(['--name', name, '--port', '0', '--poll', '0.3']);
    try {
      const url = await s.url;
      const png = await sharp(Buffer.alloc(28 * 28, 90), { raw: { width: 28, height: 28, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toBuffer();
      const predict = async () => {
        const res = await fetch(`${url}/predict`, {
          method: 'POST',
          body: png,
          headers: { 'Content-Type': 'image/png' },
        });
        const json = (await res.json()) as {
          predictions: { probabilities: number[]; class: number }[];
          model: { version: string; uri: string };
        };
        return { status: res.status, json };
      };
      const first = await predict();
      assert.equal(first.status, 200, JSON.stringify(first.json));
      assert.equal(first.json.model.version, 'v1');
      assert.equal(first.json.model.uri, `s3://${BUCKET}/${prefix}/versions/v1/`);
      assert.equal(first.json.predictions[0].probabilities.length, 10);

      let stop = false;
      const statuses: number[] = [];
      const versions: string[] = [];
      const load = (async () => {
        while (!stop) {
          const r = await predict();
          statuses.push(r.status);
          versions.push(r.json.model?.version);
        }
      })();
      await putVersion('v2', 2);
      await movePointer('v2');
      const deadline = Date.now() + 20000;
      while (versions.at(-1) !== 'v2' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(versions.at(-1), 'v2', `the server followed the pointer; saw ${[...new Set(versions)].join(',')}`);

      // A broken pointer: the server keeps serving v2 and says why in its log.
      await store.putBytes(BUCKET, `${prefix}/production.json`, Buffer.from('{ not json'));
      await new Promise((r) => setTimeout(r, 1000));
      stop = true;
      await load;
      assert.deepEqual([...new Set(statuses)], [200], 'no request failed during the swap');
      assert.equal(versions.at(-1), 'v2');
      assert.match(s.stderr(), /reload from .*production\.json failed, still serving v2: .*expected JSON/);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(
        metrics,
        /tempered_serve_model_info\{version="v2",uri="s3:\/\/tempered\/models\/[^"]+\/versions\/v2\/"\} 1/,
      );
      assert.match(metrics, /tempered_serve_model_reloads_total\{result="ok"\} 1/);
    } finally {
      s.child.kill('SIGTERM');
    }
    assert.equal(await s.exit, 0, s.stderr());
  });
});
