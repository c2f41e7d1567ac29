// Stalled uploads: a client that opens many /predict requests and never finishes their bodies. The server takes
// at most maxBodiesInFlight of them (503 beyond, body unread), cuts the slow ones off after requestTimeoutMs,
// and answers /healthz throughout.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import type { ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { folderSource } from '../../../serve/model-source';
import { startModelServer } from '../../../serve/server';
import type { ModelServer } from '../../../serve/server';
import { buildReferenceCnn, saveModel } from '../../../tensor/models';

describe('serve: bodies in flight', () => {
  let dir: string;
  let server: ModelServer;
  const stalled: ClientRequest[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tempered-serve-cap-'));
    const model = buildReferenceCnn({ seed: 1 });
    await saveModel(model, join(dir, 'v1'));
    model.dispose();
    server = await startModelServer({
      source: folderSource(join(dir, 'v1'), 'v1'),
      port: 0,
      pollSeconds: 0,
      maxBodiesInFlight: 4,
      requestTimeoutMs: 3_000,
      log: () => {},
    });
  });
  after(async () => {
    for (const r of stalled) r.destroy();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Opens a POST that promises 5 MiB, sends 1 KiB and stalls; resolves with its status, if any comes. */
  function stall(): Promise<number | undefined> {
    const url = new URL(`${server.url}/predict`);
    return new Promise((resolve) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/predict',
          headers: { 'content-type': 'application/json', 'content-length': 5 * 1024 * 1024 },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      req.on('error', () => resolve(undefined));
      req.write(Buffer.alloc(1024, 32));
      stalled.push(req);
    });
  }

  it('answers 503 beyond the cap at once, keeps /healthz answering, and frees the slots after the timeout', async () => {
    const first = Array.from({ length: 4 }, () => stall());
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const extra = await Promise.all(Array.from({ length: 6 }, () => stall()));
    assert.deepEqual(extra, [503, 503, 503, 503, 503, 503], 'bodies beyond the cap are refused, unread');
    assert.ok(Date.now() - started < 2_000, 'refused at once');
    const health = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
    assert.equal(health.status, 200);
    // The stalled ones are cut off by the request timeout; then a new request gets a slot again.
    const cut = await Promise.all(first);
    assert.ok(
      cut.every((c) => c === undefined || c === 408 || c === 400),
      `stalled uploads ended: ${cut.join(',')}`,
    );
    const ok = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => 0))] }),
    });
    assert.equal(ok.status, 200, await ok.text());
  });
});
