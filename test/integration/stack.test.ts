// The launcher against real servers: idempotent up, taken ports, wrong keys, the watchdog, down by PID.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stackPaths } from '../../infra/config';
import { checkS3 } from '../../infra/health';
import { isRunning, waitForExit } from '../../infra/processes';
import type { StackInfo } from '../../infra/stack';
import { down, pickFreePorts, status, up } from '../../infra/stack';
import { createObjectStore, ObjectStoreDeniedError } from '../../storage/object-store';
import { stackFromEnv, stackHome } from '../support/stack';

const REPO = new URL('../..', import.meta.url).pathname;
const running = isRunning;

describe('the runner stack', () => {
  it('up on a running stack returns its PIDs and starts nothing', async () => {
    const home = stackHome();
    const before = await status({ home, env: {} });
    assert.ok(before.temporal.pid && before.s3.pid, 'the runner stack should be up with recorded PIDs');
    const first = await up({ home, env: {} });
    const second = await up({ home, env: {} });
    for (const info of [first, second]) {
      assert.equal(info.startedHere, false);
      assert.equal(info.temporal.pid, before.temporal.pid);
      assert.equal(info.s3.pid, before.s3.pid);
    }
    assert.equal(first.temporal.address, stackFromEnv().temporal.address);
  });

  it('rejects a wrong S3 secret and an unknown access key', async () => {
    const { s3 } = stackFromEnv();
    await checkS3(s3); // the right key works
    for (const wrong of [
      { ...s3, secretKey: `${s3.secretKey}x` },
      { ...s3, accessKey: 'NOSUCHKEY123', secretKey: 'nope-nope-nope' },
    ]) {
      await assert.rejects(checkS3(wrong), (err: { code?: string }) => {
        assert.match(String(err.code), /SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/);
        return true;
      });
      await assert.rejects(createObjectStore(wrong).list('any-bucket'), ObjectStoreDeniedError);
    }
  });
});

describe('a second stack in its own home', () => {
  const home = mkdtempSync(join(tmpdir(), 'tempered-stack-test-'));
  let blocker: Server | undefined;

  after(async () => {
    blocker?.close();
    await down({ home, env: {}, graceMs: 3_000 });
    rmSync(home, { recursive: true, force: true });
  });

  it('refuses a taken port before starting anything, naming the port', async () => {
    const ports = await pickFreePorts();
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(ports.s3, '127.0.0.1', r));
    await assert.rejects(up({ home, ports, env: {} }), (err: Error) => {
      assert.match(err.message, new RegExp(`${ports.s3} \\(s3, set TEMPERED_S3_PORT\\)`));
      return true;
    });
    const paths = stackPaths(home);
    assert.equal(existsSync(paths.temporalPid), false, 'no temporal was started');
    assert.equal(existsSync(paths.weedPid), false, 'no weed was started');
    blocker.close();
    blocker = undefined;
  });

  it('stops the servers when the process they are tied to is SIGKILLed', async () => {
    const ports = await pickFreePorts();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/tied-stack.ts', home, JSON.stringify(ports)],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const info = await new Promise<StackInfo>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]) as StackInfo);
      });
      child.on('exit', (code) => reject(new Error(`tied-stack exited ${code} before printing its info`)));
    });
    assert.equal(info.startedHere, true);
    assert.ok(running(info.temporal.pid) && running(info.s3.pid) && running(info.watchdogPid));
    // Leave data behind, to read it after a restart.
    const store = createObjectStore(info.s3);
    await store.ensureBucket('survives');
    await store.putJson('survives', 'restart.json', { ok: 1 });

    child.kill('SIGKILL');
    for (const pid of [info.temporal.pid!, info.s3.pid!, info.watchdogPid!]) {
      assert.ok(await waitForExit(pid, 20_000), `pid ${pid} still runs 20 s after its owner was killed`);
    }
    const paths = stackPaths(home);
    assert.equal(existsSync(paths.temporalPid) || existsSync(paths.weedPid), false, 'PID files removed');
  });

  it('up twice gives the same PIDs; down stops them by PID; data survives a restart', async () => {
    const ports = await pickFreePorts();
    const a = await up({ home, ports, env: {}, tieToPid: process.pid });
    const b = await up({ home, env: {} });
    assert.equal(a.startedHere, true);
    assert.equal(b.startedHere, false);
    assert.deepEqual([b.temporal.pid, b.s3.pid], [a.temporal.pid, a.s3.pid]);
    assert.deepEqual(await createObjectStore(a.s3).getJson('survives', 'restart.json'), { ok: 1 });

    const s = await status({ home, env: {} });
    assert.equal(s.temporal.answers && s.s3.answers, true);
    assert.equal(s.temporal.pid, a.temporal.pid);

    const stopped = await down({ home, env: {} });
    assert.deepEqual(stopped.map((x) => x.name).sort(), ['temporal', 'watchdog', 'weed']);
    for (const pid of [a.temporal.pid, a.s3.pid, a.watchdogPid])
      assert.equal(running(pid), false, `pid ${pid} still runs`);
    const after = await status({ home, env: {} });
    assert.equal(after.temporal.up || after.s3.up, false);
    assert.deepEqual(await down({ home, env: {} }), [], 'a second down has nothing to stop');
  });
});
