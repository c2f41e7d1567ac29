import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createObjectStore,
  formatS3Endpoint,
  formatS3Uri,
  isTransient,
  maskSecret,
  ObjectNotFoundError,
  ObjectStoreDeniedError,
  ObjectStoreUnavailableError,
  parseS3Endpoint,
  parseS3Uri,
  toStoreError,
} from '../../../storage/object-store';

describe('parseS3Uri', () => {
  it('splits bucket and key', () => {
    assert.deepEqual(parseS3Uri('s3://models/fashion/v1/weights.bin'), {
      bucket: 'models',
      key: 'fashion/v1/weights.bin',
    });
  });

  it('round-trips with formatS3Uri', () => {
    const uri = 's3://my.bucket-1/a/b c.json';
    const { bucket, key } = parseS3Uri(uri);
    assert.equal(formatS3Uri(bucket, key), uri);
  });

  it('refuses other schemes, naming the field', () => {
    assert.throws(
      () => parseS3Uri('http://x/y', { field: 'spec.data.source' }),
      /spec\.data\.source: expected an S3 URI/,
    );
  });

  it('refuses invalid bucket names', () => {
    assert.throws(() => parseS3Uri('s3://Upper/key'), /bucket "Upper" .* not a valid S3 bucket name/);
    assert.throws(() => parseS3Uri('s3://ab/key'), /not a valid S3 bucket name/);
    assert.throws(() => parseS3Uri('s3://a..b/key'), /not a valid S3 bucket name/);
  });

  it('requires a key unless told otherwise', () => {
    assert.throws(() => parseS3Uri('s3://bucket'), /expected an object key after the bucket/);
    assert.throws(() => parseS3Uri('s3://bucket/prefix/'), /expected an object key/);
    assert.deepEqual(parseS3Uri('s3://bucket', { requireKey: false }), { bucket: 'bucket', key: '' });
    assert.deepEqual(parseS3Uri('s3://bucket/runs/', { requireKey: false }), { bucket: 'bucket', key: 'runs/' });
  });

  it('refuses a double slash', () => {
    assert.throws(() => parseS3Uri('s3://bucket//key'), /starts with '\/'/);
  });
});

describe('parseS3Endpoint', () => {
  it('parses host, port and scheme', () => {
    assert.deepEqual(parseS3Endpoint('http://127.0.0.1:18333'), { endPoint: '127.0.0.1', port: 18333, useSSL: false });
    assert.deepEqual(parseS3Endpoint('https://s3.example.com'), {
      endPoint: 's3.example.com',
      port: 443,
      useSSL: true,
    });
    assert.deepEqual(parseS3Endpoint('http://[::1]:9000/'), { endPoint: '::1', port: 9000, useSSL: false });
  });

  it('round-trips with formatS3Endpoint', () => {
    for (const url of ['http://127.0.0.1:18333', 'https://s3.example.com:443', 'http://[::1]:9000']) {
      assert.equal(formatS3Endpoint(parseS3Endpoint(url)), url);
    }
  });

  it('gives clear errors naming the variable', () => {
    assert.throws(() => parseS3Endpoint('127.0.0.1:18333'), /S3_ENDPOINT: expected/);
    assert.throws(() => parseS3Endpoint('ftp://host'), /S3_ENDPOINT: expected an http/);
    assert.throws(() => parseS3Endpoint('http://host:1/bucket', 'endpoint'), /endpoint: expected no path/);
    assert.throws(() => parseS3Endpoint('http://a:b@host:1'), /S3_ACCESS_KEY/);
  });
});

describe('error classification', () => {
  const s3Error = (code: string) => Object.assign(new Error(code), { code });

  it('maps missing keys and buckets to ObjectNotFound', () => {
    for (const code of ['NoSuchKey', 'NotFound', 'NoSuchBucket']) {
      const err = toStoreError(s3Error(code), 'getBytes', 'bucket', 'k');
      assert.ok(err instanceof ObjectNotFoundError, code);
      assert.equal(err.name, 'ObjectNotFound');
      assert.equal(err.transient, false);
    }
    assert.match(toStoreError(s3Error('NoSuchKey'), 'get', 'b', 'x/y').message, /s3:\/\/b\/x\/y does not exist/);
    assert.match(toStoreError(s3Error('NoSuchBucket'), 'get', 'b', 'x').message, /bucket b does not exist/);
  });

  it('marks connection failures and 5xx as transient', () => {
    for (const err of [
      s3Error('ECONNREFUSED'),
      s3Error('ECONNRESET'),
      s3Error('InternalError'),
      s3Error('SlowDown'),
      new Error('Request failed after 0 retries: Error: Retryable HTTP status: 503'),
    ]) {
      const wrapped = toStoreError(err, 'putBytes', 'b', 'k');
      assert.ok(wrapped instanceof ObjectStoreUnavailableError, err.message);
      assert.equal(isTransient(wrapped), true);
      assert.equal(isTransient(err), true);
    }
  });

  it('treats refused credentials and other refusals as permanent', () => {
    const denied = toStoreError(s3Error('SignatureDoesNotMatch'), 'list', 'b');
    assert.ok(denied instanceof ObjectStoreDeniedError);
    assert.equal(denied.transient, false);
    assert.match(denied.message, /list s3:\/\/b: credentials refused/);
    assert.equal(isTransient(s3Error('InvalidArgument')), false);
    assert.equal(isTransient(new Error('Retryable HTTP status: 404')), false);
  });
});

describe('createObjectStore', () => {
  const ok = { endPoint: '127.0.0.1', port: 1, useSSL: false, accessKey: 'a', secretKey: 'b', region: 'us-east-1' };

  it('validates the connection, naming the field', () => {
    assert.throws(() => createObjectStore({ ...ok, port: 0 }), /port must be an integer/);
    assert.throws(() => createObjectStore({ ...ok, secretKey: '' }), /secretKey must be a non-empty string/);
  });

  it('surfaces an unreachable store as a transient error', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const store = createObjectStore(ok);
    await assert.rejects(store.getBytes('bucket', 'k'), (err: unknown) => {
      assert.ok(err instanceof ObjectStoreUnavailableError);
      assert.equal((err as ObjectStoreUnavailableError).code, 'ECONNREFUSED');
      return true;
    });
  });
});

describe('maskSecret', () => {
  it('never shows more than 4 characters', () => {
    assert.equal(maskSecret('abcdefghijklmnop'), 'abcd************');
    assert.equal(maskSecret('abc'), '****');
    assert.ok(!maskSecret('supersecretvalue').includes('secretvalue'));
  });
});

describe('a connection the store already closed', () => {
  /**
   * A stand-in S3 endpoint that answers every PUT with 200, except that it drops the connection under one request
   * (as a server that closed a kept-alive socket after its idle timeout looks to the client that reuses it).
   */
  async function droppingServer(drop: (n: number) => boolean) {
    const { createServer } = await import('node:http');
    let n = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (drop(++n)) return req.socket.destroy();
        res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"', 'content-length': '0' });
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const store = createObjectStore({
      endPoint: '127.0.0.1',
      port,
      useSSL: false,
      accessKey: 'TESTKEY',
      secretKey: 'test-secret-key',
      region: 'us-east-1',
    });
    return { store, requests: () => n, close: () => new Promise((r) => server.close(r)) };
  }

  it('is retried once on a fresh socket: the write lands', async () => {
    const s = await droppingServer((n) => n === 2);
    try {
      await s.store.putJson('bucket', 'a.json', { first: true });
      await s.store.putJson('bucket', 'a.json', { second: true });
      assert.equal(s.requests(), 3, 'the dropped request was sent again');
    } finally {
      await s.close();
    }
  });

  it('is retried only once: a store that keeps dropping is unavailable (transient), after two requests', async () => {
    const s = await droppingServer(() => true);
    try {
      await assert.rejects(s.store.putJson('bucket', 'a.json', {}), (err: unknown) => {
        assert.ok(err instanceof ObjectStoreUnavailableError, String(err));
        return true;
      });
      assert.equal(s.requests(), 2);
    } finally {
      await s.close();
    }
  });
});
