import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { takeTurns } from '../../../../worker/main';

// A worker polling two heavy queues (plain and <heavy>@<backend>) runs its heavy activities one at a time.
describe('takeTurns', () => {
  it('runs at most `slots` activities at once, in arrival order; a waiting one heartbeats its start details', async () => {
    const log: string[] = [];
    const gates: (() => void)[] = [];
    const acts = takeTurns(
      {
        async work(name: string) {
          log.push(`start ${name}`);
          await new Promise<void>((r) => gates.push(r));
          log.push(`end ${name}`);
          return name;
        },
      },
      1,
    );
    const a = new MockActivityEnvironment().run(acts.work, 'a');
    const envB = new MockActivityEnvironment({ heartbeatDetails: { cursor: 7 } });
    const beats: unknown[] = [];
    envB.on('heartbeat', (d: unknown) => beats.push(d));
    const b = envB.run(acts.work, 'b');
    await new Promise((r) => setTimeout(r, 5_500));
    assert.deepEqual(log, ['start a'], 'b waits while a runs');
    assert.ok(beats.length >= 1 && beats.every((d) => JSON.stringify(d) === '{"cursor":7}'), JSON.stringify(beats));
    gates.shift()!();
    assert.equal(await a, 'a');
    while (gates.length === 0) await new Promise((r) => setTimeout(r, 10));
    gates.shift()!();
    assert.equal(await b, 'b');
    assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b']);
  });

  it('a waiting activity that is cancelled leaves the line without taking the slot', async () => {
    const gates: (() => void)[] = [];
    const acts = takeTurns(
      {
        async work() {
          await new Promise<void>((r) => gates.push(r));
          return 'done';
        },
      },
      1,
    );
    const a = new MockActivityEnvironment().run(acts.work);
    const envB = new MockActivityEnvironment();
    const b = envB.run(acts.work);
    await new Promise((r) => setTimeout(r, 50));
    envB.cancel();
    await assert.rejects(b);
    gates.shift()!();
    assert.equal(await a, 'done');
    // The slot is free again: a third activity starts at once.
    const c = new MockActivityEnvironment().run(acts.work);
    while (gates.length === 0) await new Promise((r) => setTimeout(r, 10));
    gates.shift()!();
    assert.equal(await c, 'done');
  });
});
