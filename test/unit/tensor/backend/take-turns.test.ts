import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { availableParallelism } from 'node:os';
import { takeTurns, workerThreads } from '../../../../worker/main';

// A heavy worker shares its cores between the activities of every heavy queue it polls (plain and <heavy>@<backend>).
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

  it('shares the slots by need: shards side by side, a training alone, first come first served', async () => {
    const log: string[] = [];
    const gates = new Map<string, () => void>();
    const body = async (name: string) => {
      log.push(`start ${name}`);
      await new Promise<void>((r) => gates.set(name, r));
      log.push(`end ${name}`);
    };
    const acts = takeTurns({ shard: body, train: body }, 2, (name) => (name === 'shard' ? 1 : 2));
    const run = (fn: (name: string) => Promise<void>, name: string) => new MockActivityEnvironment().run(fn, name);
    const until = async (name: string) => {
      while (!gates.has(name)) await new Promise((r) => setTimeout(r, 5));
    };
    const a = run(acts.shard, 'a');
    const b = run(acts.shard, 'b');
    await until('a');
    await until('b');
    const t = run(acts.train, 't');
    const c = run(acts.shard, 'c'); // behind the training, though a slot frees first
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(log, ['start a', 'start b'], 'two shards run side by side; the training waits for both slots');
    gates.get('a')!();
    await a;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(log, ['start a', 'start b', 'end a'], 'one free slot goes to nobody: the training is first');
    gates.get('b')!();
    await b;
    await until('t');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!gates.has('c'), 'a shard does not run beside a training');
    gates.get('t')!();
    await t;
    await until('c');
    gates.get('c')!();
    await c;
    assert.deepEqual(log, ['start a', 'start b', 'end a', 'end b', 'start t', 'end t', 'start c', 'end c']);
  });
});

describe('the cores of a heavy worker', () => {
  it("are this machine's, one on a GPU, or TEMPERED_WORKER_THREADS; a bad value names the variable", () => {
    assert.equal(workerThreads({}, 'wasm'), availableParallelism());
    assert.equal(workerThreads({}, 'tensorflow'), availableParallelism());
    assert.equal(workerThreads({}, 'tensorflow-gpu'), 1);
    assert.equal(workerThreads({ TEMPERED_WORKER_THREADS: '3' }, 'tensorflow-gpu'), 3);
    for (const bad of ['0', '1.5', 'two'])
      assert.throws(() => workerThreads({ TEMPERED_WORKER_THREADS: bad }, 'wasm'), /TEMPERED_WORKER_THREADS: expected/);
  });
});
