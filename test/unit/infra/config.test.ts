import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  connectionEnv,
  credentialsFromEnv,
  DEFAULT_PORTS,
  localCredentials,
  portEnvName,
  resolveConnections,
  resolvePorts,
  stackPaths,
} from '../../../infra/config';

describe('ports', () => {
  it('names env vars after the port', () => {
    assert.equal(portEnvName('temporal'), 'TEMPERED_TEMPORAL_PORT');
    assert.equal(portEnvName('temporalUi'), 'TEMPERED_TEMPORAL_UI_PORT');
    assert.equal(portEnvName('weedMasterGrpc'), 'TEMPERED_WEED_MASTER_GRPC_PORT');
  });

  it('takes defaults, then env, then explicit options', () => {
    assert.deepEqual(resolvePorts({}), DEFAULT_PORTS);
    const p = resolvePorts({ TEMPERED_TEMPORAL_PORT: '27233', TEMPERED_S3_PORT: '28333' }, { s3: 38333 });
    assert.equal(p.temporal, 27233);
    assert.equal(p.s3, 38333);
    assert.equal(p.temporalUi, DEFAULT_PORTS.temporalUi);
  });

  it('keeps the defaults off the well-known ports', () => {
    const common = [7233, 8233, 8333, 9333, 9340, 8888, 23646, 6060, 7333, 8181, 9000, 9090, 3000];
    for (const port of Object.values(DEFAULT_PORTS)) assert.ok(!common.includes(port), `${port}`);
  });

  it('refuses bad and duplicate ports, naming the variable', () => {
    assert.throws(() => resolvePorts({ TEMPERED_S3_PORT: 'abc' }), /TEMPERED_S3_PORT: expected a port number/);
    assert.throws(() => resolvePorts({ TEMPERED_S3_PORT: '70000' }), /TEMPERED_S3_PORT/);
    assert.throws(() => resolvePorts({}, { temporal: 0 }), /ports\.temporal: expected a port number/);
    assert.throws(
      () => resolvePorts({}, { s3: DEFAULT_PORTS.temporal }),
      /ports\.s3 and ports\.temporal are both 17233/,
    );
  });
});

describe('credentials', () => {
  const home = mkdtempSync(join(tmpdir(), 'tempered-config-test-'));
  after(() => rmSync(home, { recursive: true, force: true }));

  it('reads S3_*, then MINIO_ROOT_*, then MINIO_*_KEY', () => {
    assert.equal(credentialsFromEnv({}), undefined);
    assert.deepEqual(
      credentialsFromEnv({ S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b', MINIO_ROOT_USER: 'x', MINIO_ROOT_PASSWORD: 'y' }),
      {
        accessKey: 'a',
        secretKey: 'b',
      },
    );
    assert.deepEqual(credentialsFromEnv({ MINIO_ROOT_USER: 'x', MINIO_ROOT_PASSWORD: 'y' }), {
      accessKey: 'x',
      secretKey: 'y',
    });
    assert.deepEqual(credentialsFromEnv({ MINIO_ACCESS_KEY: 'm', MINIO_SECRET_KEY: 'n' }), {
      accessKey: 'm',
      secretKey: 'n',
    });
  });

  it('refuses half a pair, naming the missing variable', () => {
    assert.throws(() => credentialsFromEnv({ S3_ACCESS_KEY: 'a' }), /S3_SECRET_KEY is not set but S3_ACCESS_KEY is/);
    assert.throws(() => credentialsFromEnv({ MINIO_ROOT_PASSWORD: 'p' }), /MINIO_ROOT_USER is not set/);
  });

  it('generates local credentials once, mode 0600, and reuses them', () => {
    const paths = stackPaths(join(home, 'gen'));
    assert.equal(localCredentials(paths, false), undefined);
    const first = localCredentials(paths, true)!;
    assert.ok(first.accessKey.length >= 16 && first.secretKey.length >= 32);
    assert.equal(statSync(paths.credentials).mode & 0o777, 0o600);
    assert.deepEqual(localCredentials(paths, true), first);
  });

  it('names the file when it is broken', () => {
    const paths = stackPaths(join(home, 'broken'));
    mkdirSync(paths.home, { recursive: true });
    writeFileSync(paths.credentials, '{"accessKey": 1}');
    assert.throws(() => localCredentials(paths, true), new RegExp(`${paths.credentials}: expected non-empty string`));
  });
});

describe('resolveConnections', () => {
  const env = {
    TEMPORAL_ADDRESS: '10.0.0.5:7233',
    TEMPORAL_NAMESPACE: 'hardening',
    S3_ENDPOINT: 'https://minio.example.com:9000',
    MINIO_ROOT_USER: 'root',
    MINIO_ROOT_PASSWORD: 'secret',
  };

  it('reads the env and round-trips through connectionEnv', () => {
    const c = resolveConnections({ env, useLocalStack: false });
    assert.deepEqual(c.temporal, { address: '10.0.0.5:7233', namespace: 'hardening' });
    assert.deepEqual(c.s3, {
      endPoint: 'minio.example.com',
      port: 9000,
      useSSL: true,
      accessKey: 'root',
      secretKey: 'secret',
      region: 'us-east-1',
    });
    const again = resolveConnections({ env: connectionEnv(c), useLocalStack: false });
    assert.deepEqual(again.temporal, c.temporal);
    assert.deepEqual(again.s3, c.s3);
  });

  it('says which variable is missing or malformed', () => {
    const home = mkdtempSync(join(tmpdir(), 'tempered-empty-'));
    try {
      assert.throws(
        () => resolveConnections({ env: {}, home }),
        /set TEMPORAL_ADDRESS .* or start the local stack with `tempered up`/,
      );
      assert.throws(
        () => resolveConnections({ env: { ...env, TEMPORAL_ADDRESS: 'http://x:1' } }),
        /TEMPORAL_ADDRESS: expected host:port/,
      );
      assert.throws(() => resolveConnections({ env: { ...env, S3_ENDPOINT: 'nope' } }), /S3_ENDPOINT: expected a URL/);
      const { MINIO_ROOT_USER: _u, MINIO_ROOT_PASSWORD: _p, ...noKeys } = env;
      assert.throws(
        () => resolveConnections({ env: noKeys, home, useLocalStack: false }),
        /no S3 credentials: set S3_ACCESS_KEY/,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('falls back to the local stack recorded under the home', () => {
    const home = mkdtempSync(join(tmpdir(), 'tempered-local-'));
    try {
      const paths = stackPaths(home);
      mkdirSync(paths.run, { recursive: true });
      writeFileSync(
        paths.state,
        JSON.stringify({ ports: { ...DEFAULT_PORTS, temporal: 27000, s3: 28000 }, namespace: 'default' }),
      );
      const creds = localCredentials(paths, true)!;
      const c = resolveConnections({ env: {}, home });
      assert.equal(c.temporal.address, '127.0.0.1:27000');
      assert.equal(c.s3.port, 28000);
      assert.equal(c.s3.accessKey, creds.accessKey);
      assert.deepEqual(c.source, { temporal: 'local-stack', s3: 'local-stack' });
      assert.throws(() => resolveConnections({ env: {}, home, useLocalStack: false }), /set TEMPORAL_ADDRESS/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
