import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { installTemporalRuntimeMetrics, TemporalMetricsInstallError } from '../../../metrics/temporal';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('installs the Prometheus exporter once; same address is a no-op, another one throws', async () => {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  installTemporalRuntimeMetrics(address);
  installTemporalRuntimeMetrics(address);
  const res = await fetch(`http://${address}/metrics`);
  assert.equal(res.status, 200);
  await res.text();
  assert.throws(() => installTemporalRuntimeMetrics(`127.0.0.1:${port + 1}`), TemporalMetricsInstallError);
});

test('rejects an address without a port', () => {
  assert.throws(() => installTemporalRuntimeMetrics('localhost'), /expected host:port/);
});

test('called after the runtime exists: a clear error (in a child process with its own runtime)', async () => {
  const script = [
    "const { Runtime } = await import('@temporalio/worker');",
    "const { installTemporalRuntimeMetrics } = await import('./metrics/temporal.ts');",
    'Runtime.instance();',
    "try { installTemporalRuntimeMetrics('127.0.0.1:1'); console.log('no error'); }",
    'catch (e) { console.log(e.name + ": " + e.message); }',
  ].join('\n');
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: REPO_ROOT, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
  assert.match(
    out,
    /^TemporalMetricsInstallError: .*ran too late.*before NativeConnection\.connect or Worker\.create/m,
  );
});
