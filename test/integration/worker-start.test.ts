// A half-started worker: when the heavy child process cannot start (its metrics port, the io port + 1, is
// taken), `tempered worker` must stop as a whole, not keep polling the io queue so runs fetch data and wait.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../infra/config';
import { freePorts } from '../../infra/processes';
import { uniqueName } from '../support/stack';

describe('tempered worker with both queues', () => {
  it('exits non-zero when its heavy child fails to start', async () => {
    // A port whose successor we hold: the io worker's metrics bind it, the heavy child's cannot bind the next.
    let blocker: Server | undefined;
    let port = 0;
    for (const p of await freePorts(8)) {
      const s = createServer();
      const ok = await new Promise<boolean>((r) =>
        s.once('error', () => r(false)).listen(p + 1, '127.0.0.1', () => r(true)),
      );
      if (ok) {
        blocker = s;
        port = p;
        break;
      }
    }
    assert.ok(blocker, 'found a port pair');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'worker', 'main.ts')], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          TEMPERED_IO_QUEUE: uniqueName('ws-io'),
          TEMPERED_HEAVY_QUEUE: uniqueName('ws-heavy'),
          TEMPERED_METRICS_PORT: String(port),
          TEMPERED_SDK_METRICS: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(-1);
        }, 90_000);
        child.once('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      assert.notEqual(code, -1, `the worker was still running 90 s after its heavy child failed:\n${out}`);
      assert.notEqual(code, 0, out);
      assert.match(out, /heavy worker process exited/);
      assert.match(out, new RegExp(String((blocker!.address() as AddressInfo).port)));
    } finally {
      blocker?.close();
    }
  });
});
