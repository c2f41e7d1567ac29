import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  acquireLock,
  ephemeralPortStart,
  freePorts,
  isOurs,
  isPortFree,
  isRunning,
  readPid,
  stopPid,
  waitForExit,
} from '../../../infra/processes';
import { tieProcessGroup } from '../../../infra/stack';
import { parseTapCounts } from '../../run';

describe('processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tempered-proc-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('recognises a process by its marker and stops it by PID', async () => {
    const marker = join(dir, 'marker-file');
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore' });
    const pid = child.pid!;
    assert.equal(isOurs(pid, marker), true);
    assert.equal(isOurs(pid, join(dir, 'another-home')), false, 'a PID with another marker is not ours');
    assert.equal(await stopPid(pid, 2_000), 'SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(isRunning(pid), false);
    assert.equal(isOurs(pid, marker), false);
    assert.equal(await stopPid(pid), undefined, 'stopping a stopped process reports nothing');
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const child = spawn(
      process.execPath,
      ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    // Wait until the handler is installed, or SIGTERM would end it before it can ignore it.
    await new Promise((r) => child.stdout!.once('data', r));
    assert.equal(await stopPid(child.pid!, 300), 'SIGKILL');
    assert.equal(isRunning(child.pid!), false);
  });

  it('reads PID files defensively', () => {
    writeFileSync(join(dir, 'ok.pid'), '1234\n');
    writeFileSync(join(dir, 'bad.pid'), 'hello');
    assert.equal(readPid(join(dir, 'ok.pid')), 1234);
    assert.equal(readPid(join(dir, 'bad.pid')), undefined);
    assert.equal(readPid(join(dir, 'missing.pid')), undefined);
  });

  it('finds free ports and sees a taken one', async () => {
    const ports = await freePorts(16);
    const [a] = ports;
    assert.equal(new Set(ports).size, 16);
    for (const p of ports) assert.ok(p >= 1024 && p < ephemeralPortStart(), `port ${p} is below the ephemeral range`);
    assert.equal(await isPortFree(a), true);
    const server = createServer();
    await new Promise<void>((r) => server.listen(a, '127.0.0.1', r));
    try {
      assert.equal(await isPortFree(a), false);
    } finally {
      server.close();
    }
  });

  it('takes over a lock whose holder died, and waits for a live one', async () => {
    const lock = join(dir, 'lock');
    writeFileSync(lock, '999999999\n'); // no such process
    const release = await acquireLock(lock, 1_000);
    assert.equal(readPid(lock), process.pid);
    await assert.rejects(acquireLock(lock, 300), /held by process/);
    release();
    (await acquireLock(lock, 300))();
  });
});

describe('test runner', () => {
  it('parses the TAP summary, counting cancelled as failed', () => {
    const tap =
      'TAP version 13\n# Subtest: x\n    # pass 99\nok 1 - x\n1..1\n# tests 5\n# pass 3\n# fail 1\n# cancelled 1\n# skipped 0\n';
    assert.deepEqual(parseTapCounts(tap), { passed: 3, failed: 2 });
    assert.equal(parseTapCounts('not tap'), undefined);
  });
});

describe('tieProcessGroup', () => {
  it('ends a detached process group when the process it is tied to is SIGKILLed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tempered-tie-test-'));
    try {
      const owner = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      const group = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', detached: true });
      const watchdog = tieProcessGroup(group.pid!, owner.pid!, join(dir, 'watchdog.log'), 'test group');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(isRunning(group.pid!), true, 'the group runs while its owner does');
      owner.kill('SIGKILL');
      assert.equal(await waitForExit(group.pid!, 10_000), true, 'the group is ended after its owner dies');
      assert.equal(await waitForExit(watchdog, 5_000), true, 'the watchdog exits when done');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
