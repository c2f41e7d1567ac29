// The embedded store authenticates every door: no port the launcher opens for SeaweedFS reads, writes or hands
// out a token without a key, while the S3 API with the stack's keys works. Reproduces the probe that listed,
// read and overwrote `production.json` with plain curl on the filer port.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as http2Connect, constants as h2 } from 'node:http2';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { status } from '../../infra/stack';
import { createObjectStore } from '../../storage/object-store';
import { stackFromEnv, stackHome, uniqueName } from '../support/stack';

interface HttpAnswer {
  status?: number;
  body: string;
  headers: Record<string, unknown>;
  error?: string;
}

function http1(port: number, method: string, path: string, body?: string): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, timeout: 3_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c.length < 65_536 ? c : ''));
      res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers }));
      res.on('error', (e) => resolve({ body: text, headers: {}, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ body: '', headers: {}, error: e.message }));
    req.end(body);
  });
}

/** One unary gRPC call (an empty message) over h2c or TLS without a client certificate: did any server answer it? */
function grpcCall(port: number, tls: boolean, path: string): Promise<{ grpcStatus?: string; error?: string }> {
  return new Promise((resolve) => {
    const session = http2Connect(`${tls ? 'https' : 'http'}://127.0.0.1:${port}`, {
      rejectUnauthorized: false,
      timeout: 3_000,
    } as never);
    const done = (r: { grpcStatus?: string; error?: string }) => {
      session.destroy();
      resolve(r);
    };
    session.on('error', (e) => done({ error: e.message }));
    session.setTimeout(3_000, () => done({ error: 'timeout' }));
    const stream = session.request({
      [h2.HTTP2_HEADER_METHOD]: 'POST',
      [h2.HTTP2_HEADER_PATH]: path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let grpcStatus: string | undefined;
    stream.on('response', (headers) => (grpcStatus = headers['grpc-status'] as string | undefined));
    stream.on('trailers', (trailers) => (grpcStatus = trailers['grpc-status'] as string | undefined));
    stream.on('error', (e) => done({ grpcStatus, error: e.message }));
    stream.on('close', () => done({ grpcStatus }));
    stream.resume();
    stream.end(Buffer.from([0, 0, 0, 0, 0])); // an empty protobuf message
  });
}

describe('the embedded store without credentials', () => {
  it('refuses a key-less read, write or token request on every port it opens; S3 with keys works', async () => {
    const st = await status({ home: stackHome(), env: {} });
    const ports = st.s3.ports as Record<string, number> | undefined;
    assert.ok(ports && Object.keys(ports).length >= 10, `the runner's store ports: ${JSON.stringify(ports)}`);

    const store = createObjectStore(stackFromEnv().s3);
    const bucket = uniqueName('auth');
    const key = 'models/m/production.json';
    const secret = `{"uri":"s3://${bucket}/models/m/versions/v1/","marker":"${uniqueName('secret')}"}`;
    await store.ensureBucket(bucket);
    await store.putBytes(bucket, key, Buffer.from(secret));

    const leaks: string[] = [];
    for (const [name, port] of Object.entries(ports)) {
      const probes: [string, string, string?][] = [
        ['GET', `/buckets/${bucket}/${key}`],
        ['GET', `/buckets/${bucket}/models/m/`],
        ['GET', `/buckets/?pretty=y`],
        ['PUT', `/buckets/${bucket}/${key}`, '{"uri":"s3://evil/planted/"}'],
        ['POST', `/buckets/${bucket}/${key}`, '{"uri":"s3://evil/planted/"}'],
        ['GET', '/dir/assign'],
        ['POST', '/submit', 'planted'],
        ['GET', `/${bucket}/${key}`],
      ];
      for (const [method, path, body] of probes) {
        const a = await http1(port, method, path, body);
        const ok = a.status !== undefined && a.status >= 200 && a.status < 300;
        if (ok || a.body.includes('marker') || a.body.includes('"fid"') || a.headers.authorization) {
          leaks.push(`${name} (${port}) ${method} ${path} → ${a.status} ${a.body.slice(0, 120)}`);
        }
      }
      for (const tls of [false, true]) {
        for (const path of ['/filer_pb.SeaweedFiler/LookupDirectoryEntry', '/master_pb.Seaweed/Assign']) {
          const g = await grpcCall(port, tls, path);
          if (g.grpcStatus !== undefined) {
            leaks.push(
              `${name} (${port}) gRPC ${tls ? 'TLS without a client certificate' : 'h2c'} ${path} → grpc-status ${g.grpcStatus}`,
            );
          }
        }
      }
    }
    assert.deepEqual(leaks, [], 'every door of the store must refuse a caller without credentials');

    // The pointer is unchanged and readable with the keys; without them S3 refuses it.
    assert.equal((await store.getBytes(bucket, key)).toString(), secret);
    const anonymous = await http1(ports.s3, 'GET', `/${bucket}/${key}`);
    assert.equal(anonymous.status, 403);
    await store.remove(bucket, key);
  });

  it('keeps the home, the store settings and the SQLite file to their owner', async () => {
    const home = stackHome();
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.equal(mode(home), 0o700, home);
    for (const file of [
      join(home, 's3', 'security.toml'),
      join(home, 's3', 'tls', 'node.key'),
      join(home, 'temporal', 'temporal.db'),
    ]) {
      assert.equal(mode(file) & 0o077, 0, `${file} is mode ${mode(file).toString(8)}`);
    }
  });
});
