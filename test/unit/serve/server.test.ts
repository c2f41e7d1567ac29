// The model server over real HTTP on a loopback port, with models saved to folders: predictions equal the
// model's own, strict input checks with clear 4xx messages, metrics, and a hot swap that drops no request.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import type { ModelSource } from '../../../serve/model-source';
import { folderSource } from '../../../serve/model-source';
import type { ModelServer } from '../../../serve/server';
import { startModelServer } from '../../../serve/server';
import { buildReferenceCnn, loadModel, saveModel } from '../../../tensor/models';

let dir: string;
const quiet = () => {};

/** A 28×28 grayscale PNG of `pixels` (0..255). */
const grayPng = (pixels: Uint8Array) =>
  sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();

const pattern = (k: number) => Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 7 + k * 31) % 256);

async function post(url: string, body: Buffer | string, type: string) {
  const res = await fetch(`${url}/predict`, { method: 'POST', body, headers: { 'Content-Type': type } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

type Prediction = { probabilities: number[]; class: number; label?: string };
type Answer = { predictions: Prediction[]; model: { version: string; uri: string } };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempered-serve-'));
  for (const [name, seed] of [
    ['v1', 1],
    ['v2', 2],
  ] as const) {
    const model = buildReferenceCnn({ seed });
    await saveModel(model, join(dir, name));
    model.dispose();
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('serve: predict', () => {
  let server: ModelServer;
  let reference: tf.LayersModel;
  let tensorsBefore: number;

  before(async () => {
    tensorsBefore = tf.memory().numTensors;
    server = await startModelServer({
      source: folderSource(join(dir, 'v1'), 'v1'),
      port: 0,
      pollSeconds: 0,
      maxBodyBytes: 64 * 1024,
      labels: ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'],
      log: quiet,
    });
    reference = await loadModel(join(dir, 'v1'));
  });
  after(async () => {
    reference?.dispose();
    await server?.close();
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the served model was disposed on close');
  });

  const expected = (pixels: Uint8Array) =>
    tf.tidy(() => {
      const x = tf.tensor4d(
        Float32Array.from(pixels, (p) => p / 255),
        [1, 28, 28, 1],
      );
      return tf.softmax(reference.predict(x) as tf.Tensor2D).arraySync()[0];
    });

  test('a PNG: the model’s softmax probabilities, the argmax class and its label, the model version', async () => {
    const pixels = pattern(1);
    const { status, json } = await post(server.url, await grayPng(pixels), 'image/png');
    assert.equal(status, 200, JSON.stringify(json));
    const answer = json as unknown as Answer;
    const [p] = answer.predictions;
    const want = expected(pixels);
    assert.equal(p.probabilities.length, 10);
    p.probabilities.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `class ${i}: ${x} vs ${want[i]}`));
    assert.ok(Math.abs(p.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    assert.equal(p.class, want.indexOf(Math.max(...want)));
    assert.equal(
      p.label,
      ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'][p.class],
    );
    assert.deepEqual(answer.model, { version: 'v1', uri: join(dir, 'v1') });
  });

  test('JSON instances: a batch, [h][w] and [h][w][1] forms, same answers as the image', async () => {
    const a = pattern(2);
    const rows = (px: Uint8Array, wrap: boolean) =>
      Array.from({ length: 28 }, (_, y) =>
        Array.from({ length: 28 }, (_, x) => (wrap ? [px[y * 28 + x] / 255] : px[y * 28 + x] / 255)),
      );
    const { status, json } = await post(
      server.url,
      JSON.stringify({ instances: [rows(a, false), rows(a, true)] }),
      'application/json',
    );
    assert.equal(status, 200, JSON.stringify(json));
    const [p, q] = (json as unknown as Answer).predictions;
    const want = expected(a);
    p.probabilities.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5));
    assert.deepEqual(p, q);
  });

  test('bad input: a 4xx with one clear message each', async () => {
    const rgb32 = await sharp(Buffer.alloc(32 * 32 * 3, 100), { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toBuffer();
    const rgb28 = await sharp(Buffer.alloc(28 * 28 * 3, 100), { raw: { width: 28, height: 28, channels: 3 } })
      .jpeg()
      .toBuffer();
    const px = Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => 0.5));
    const outside = px.map((r) => [...r]);
    outside[3][4] = 1.5;
    const cases: [Buffer | string, string, number, RegExp][] = [
      [rgb32, 'image/png', 422, /^expected a 28×28 grayscale image, got 32×32×3$/],
      [rgb28, 'image/jpeg', 422, /^expected a 28×28 grayscale image, got 28×28×3$/],
      [rgb28, 'image/png', 400, /Content-Type says image\/png but the body is jpeg/],
      [
        Buffer.from('not an image at all'),
        'image/png',
        400,
        /^body is not a decodable image; expected a PNG of 28×28 grayscale$/,
      ],
      ['{"instances": [', 'application/json', 400, /^body is not valid JSON/],
      ['{"images": []}', 'application/json', 400, /expected a JSON object \{ "instances"/],
      [
        JSON.stringify({ instances: [outside] }),
        'application/json',
        422,
        /^instances\[0\]\[3\]\[4\]: expected pixel values in \[0, 1\], got 1\.5$/,
      ],
      [JSON.stringify({ instances: [px.slice(1)] }), 'application/json', 422, /^instances\[0\]: expected 28 rows/],
      ['hello', 'text/plain', 415, /Content-Type text\/plain is not accepted/],
      [Buffer.alloc(100 * 1024, 1), 'image/png', 413, /over the limit of 65536 bytes/],
      ['', 'image/png', 400, /empty body/],
    ];
    for (const [body, type, status, message] of cases) {
      const res = await post(server.url, body, type);
      assert.equal(res.status, status, `${type} ${String(message)}: ${JSON.stringify(res.json)}`);
      assert.match(String(res.json.error), message);
    }
    const get = await fetch(`${server.url}/predict`);
    assert.equal(get.status, 405);
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
  });

  test('healthz and metrics', async () => {
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
      status: string;
      model: { version: string };
      input: number[];
    };
    assert.deepEqual([health.status, health.model.version, health.input], ['ok', 'v1', [28, 28, 1]]);
    const res = await fetch(`${server.url}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /tempered_serve_requests_total\{route="\/predict",code="200"\} [1-9]/);
    assert.match(text, /tempered_serve_requests_total\{route="\/predict",code="422"\} [1-9]/);
    assert.match(text, /tempered_serve_request_duration_seconds_count\{route="\/predict"\} [1-9]/);
    assert.match(text, /tempered_serve_model_info\{version="v1",uri="[^"]+v1"\} 1/);
    assert.match(text, /tempered_serve_predictions_total [3-9]/);
  });
});

describe('serve: hot swap', () => {
  test('a moved pointer swaps the model; requests in flight all succeed; the old model is disposed', async () => {
    const tensorsBefore = tf.memory().numTensors;
    let current = 'v1';
    let failNext = false;
    const disposed: string[] = [];
    const source: ModelSource = {
      description: 'test pointer',
      fingerprint: async () => current,
      async load() {
        if (failNext) throw new Error('weights.bin: missing');
        const version = current;
        const model = await loadModel(join(dir, version));
        const dispose = model.dispose.bind(model);
        model.dispose = () => {
          disposed.push(version);
          return dispose();
        };
        return { model, version, uri: join(dir, version), fingerprint: version };
      },
    };
    const server = await startModelServer({ source, port: 0, pollSeconds: 0, log: quiet });
    try {
      const png = await grayPng(pattern(3));
      let stop = false;
      const seen: string[] = [];
      const statuses: number[] = [];
      const client = async () => {
        while (!stop) {
          const { status, json } = await post(server.url, png, 'image/png');
          statuses.push(status);
          seen.push((json as unknown as Answer).model?.version);
        }
      };
      const clients = [client(), client(), client()];
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await server.reload(), false, 'nothing changed yet');

      current = 'v2';
      assert.equal(await server.reload(), true);
      assert.equal(server.current().version, 'v2');
      await new Promise((r) => setTimeout(r, 150));

      failNext = true;
      current = 'v3-broken';
      assert.equal(await server.reload(), false, 'a failed load keeps the old model');
      assert.equal(server.current().version, 'v2');
      stop = true;
      await Promise.all(clients);

      assert.ok(statuses.length > 6, `requests made: ${statuses.length}`);
      assert.deepEqual([...new Set(statuses)], [200], 'every request succeeded');
      assert.equal(seen[0], 'v1');
      assert.equal(seen.at(-1), 'v2');
      const firstV2 = seen.indexOf('v2');
      assert.ok(firstV2 > 0 && seen.slice(firstV2 + 3).every((v) => v === 'v2'), seen.join(','));
      assert.deepEqual(disposed, ['v1'], 'v1 disposed once its requests finished');
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /tempered_serve_model_info\{version="v2"/);
      assert.doesNotMatch(metrics, /tempered_serve_model_info\{version="v1"/);
      assert.match(metrics, /tempered_serve_model_reloads_total\{result="ok"\} 1/);
      assert.match(metrics, /tempered_serve_model_reloads_total\{result="error"\} 1/);
    } finally {
      await server.close();
    }
    assert.deepEqual(disposed, ['v1', 'v2']);
    assert.equal(tf.memory().numTensors, tensorsBefore);
  });
});
