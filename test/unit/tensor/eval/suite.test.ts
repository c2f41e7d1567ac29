import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apgd } from '../../../../tensor/attacks';
import {
  customAttackEntry,
  reduceSuite,
  runSuiteShard,
  suiteAttacks,
  SuiteVerificationError,
  WRONG_CLEAN,
} from '../../../../tensor/eval';
import type { SuiteAttackEntry, SuiteShardState } from '../../../../tensor/eval';
import { setupBackend, trainedFixture } from '../attacks/fixture';
import type { Images } from '../attacks/fixture';

let model: tf.LayersModel;
let data: Images;

before(async () => {
  await setupBackend();
  const fixture = await trainedFixture();
  model = fixture.model;
  data = fixture.testSet;
});

after(() => model.dispose());

const eps = 0.03;

async function noLeak<T>(f: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await f();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  return out;
}

describe('runSuiteShard', () => {
  it('runs the fast suite in sequence: flags per image agree with a recheck, accuracies only fall', async () => {
    const attacks = suiteAttacks('fast', { norm: 'linf', numClasses: 10 });
    assert.deepEqual(
      attacks.map((a) => a.name),
      ['apgd-ce', 'apgd-t'],
    );
    const shard = await noLeak(() =>
      runSuiteShard(model, data, { attacks, norm: 'linf', eps, start: 10, count: 60, batchSize: 25, seed: 1 }),
    );
    assert.equal(shard.count, 60);
    assert.deepEqual(shard.labels, Array.from(data.labels.subarray(10, 70)));
    const clean = tf.tidy(() => {
      const x = tf.tensor4d(data.images.subarray(10 * 784, 70 * 784), [60, 28, 28, 1]);
      return Array.from(tf.argMax(model.apply(x) as tf.Tensor2D, 1).dataSync());
    });
    assert.deepEqual(shard.cleanPredictions, clean);
    const result = reduceSuite([shard]);
    assert.equal(result.clean.correct, clean.filter((p, i) => p === shard.labels[i]).length);
    assert.ok(result.perAttack[0].broke > 0, 'APGD-CE should break points at ε=0.03');
    assert.ok(result.worstCase.accuracy < result.clean.accuracy);
    assert.equal(result.perAttack[1].after.correct, result.worstCase.correct);
  });

  it('runs the standard suite end to end: APGD-CE, APGD-T, FAB-T, Square', async () => {
    const attacks = suiteAttacks('standard', { norm: 'linf', numClasses: 10 });
    assert.deepEqual(
      attacks.map((a) => a.name),
      ['apgd-ce', 'apgd-t', 'fab-t', 'square'],
    );
    // Every attack reports its progress between iterations, inside the one batch it runs on.
    const seen = new Map<string, number[]>();
    const shard = await noLeak(() =>
      runSuiteShard(model, data, {
        attacks,
        norm: 'linf',
        eps: 0.02,
        start: 100,
        count: 24,
        batchSize: 24,
        seed: 2,
        onWork: (p) => seen.set(p.attack, [...(seen.get(p.attack) ?? []), p.fraction]),
      }),
    );
    const r = reduceSuite([shard]);
    assert.equal(r.perAttack.length, 4);
    assert.ok(r.perAttack[0].broke > 0);
    assert.equal(r.perAttack[3].after.correct, r.worstCase.correct);
    r.perAttack.forEach((a, i) => {
      const robustBefore = i === 0 ? r.clean.correct : r.perAttack[i - 1].after.correct;
      if (robustBefore === 0) return;
      const f = seen.get(a.name) ?? [];
      assert.ok(f.length > 10, `${a.name} reported progress ${f.length} times`);
    });
  });

  it('reports the share of the work done, attacks weighed by their cost, and the reports change nothing', async () => {
    const attacks = suiteAttacks('fast', { norm: 'linf', numClasses: 10 });
    const o = { attacks, norm: 'linf' as const, eps: 0.03, start: 0, count: 40, batchSize: 20, seed: 5 };
    const plain = await runSuiteShard(model, data, o);
    const fractions: number[] = [];
    const after: number[] = [];
    // Timers run while attacks work (tensor reads alone may never yield to the event loop).
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    const reported = await noLeak(() =>
      runSuiteShard(model, data, {
        ...o,
        onWork: (p) => fractions.push(p.fraction),
        onProgress: (_s, p) => void after.push(p.fraction),
      }),
    ).finally(() => clearInterval(timer));
    const ms = performance.now() - t0;
    assert.ok(ticks >= Math.floor(ms / 250), `${ticks} timer ticks in ${ms.toFixed(0)} ms`);
    assert.deepEqual({ ...reported, seconds: 0 }, { ...plain, seconds: 0 });
    assert.ok(fractions.length > 20);
    for (let i = 1; i < fractions.length; i++) assert.ok(fractions[i] >= fractions[i - 1], 'the share never falls');
    assert.ok(fractions.every((f) => f >= 0 && f <= 1));
    // APGD-CE's work is 100 of 100 + 3 × 100: once its batches are done a quarter of the suite is.
    const ceBatches = Math.ceil(plain.brokenBy.filter((b) => b !== WRONG_CLEAN).length / 20);
    assert.equal(after[0], 0, 'the clean pass');
    assert.ok(Math.abs(after[ceBatches] - 0.25) < 1e-9, `after APGD-CE: ${after[ceBatches]}`);
    assert.equal(after.at(-1), 1);
  });

  it('resumes from a mid-shard state with the same result as an uninterrupted run', async () => {
    // Random sign noise breaks a seed-dependent set of points, so a resume that drew other seeds would differ.
    const noise = (name: string): SuiteAttackEntry => ({
      name,
      run: async (c) =>
        tf.tidy(() => {
          const signs = tf.sign(tf.randomUniform(c.x.shape, -1, 1, 'float32', c.seed));
          return tf.clipByValue(tf.add(c.x, tf.mul(signs, c.eps)), 0, 1) as tf.Tensor4D;
        }),
    });
    const attacks = [noise('noise-a'), noise('noise-b'), { name: 'apgd-ce', run: apgd({ iterations: 10 }) }];
    const o = { attacks, norm: 'linf' as const, eps: 0.12, start: 0, count: 50, batchSize: 10, seed: 7 };
    const states: SuiteShardState[] = [];
    const full = await runSuiteShard(model, data, { ...o, onProgress: (s) => void states.push(s) });
    assert.ok(full.brokenBy.includes(0) && full.brokenBy.includes(1), `noise should break points: ${full.brokenBy}`);
    const mid = states.find((s) => s.attack === 0 && s.batch === 2)!;
    const resumed = await noLeak(() => runSuiteShard(model, data, { ...o, resume: mid }));
    assert.deepEqual(resumed.brokenBy, full.brokenBy);
    assert.deepEqual(resumed.cleanPredictions, full.cleanPredictions);
    // A resumed run does not redo the batches before its state: an attack that throws there is never called.
    let calls = 0;
    const counting: SuiteAttackEntry[] = attacks.map((a) => ({
      name: a.name,
      run: (c) => {
        calls++;
        return a.run(c);
      },
    }));
    const last = states[states.length - 1];
    const again = await runSuiteShard(model, data, { ...o, attacks: counting, resume: last });
    assert.equal(calls, 0);
    assert.deepEqual(again.brokenBy, full.brokenBy);
  });

  it('rejects an attack that leaves the ε-ball or [0,1] instead of counting it', async () => {
    const outside: SuiteAttackEntry = {
      name: 'too-far',
      run: async ({ x }) => tf.tidy(() => tf.clipByValue(tf.add(x, 2 * eps), 0, 1) as tf.Tensor4D),
    };
    const negative: SuiteAttackEntry = {
      name: 'negative',
      run: async ({ x }) => tf.tidy(() => tf.sub(x, 1e-3) as tf.Tensor4D),
    };
    const nan: SuiteAttackEntry = { name: 'nan', run: async ({ x }) => tf.tidy(() => tf.mul(x, NaN) as tf.Tensor4D) };
    for (const a of [outside, negative, nan]) {
      await noLeak(() =>
        assert.rejects(
          runSuiteShard(model, data, { attacks: [a], norm: 'linf', eps, start: 0, count: 20 }),
          (err: Error) => err instanceof SuiteVerificationError && err.message.includes(a.name),
        ),
      );
    }
  });

  it('does not trust an attack: an unchanged batch breaks nothing', async () => {
    const identity: SuiteAttackEntry = { name: 'identity', run: async ({ x }) => tf.clone(x) };
    const shard = await runSuiteShard(model, data, { attacks: [identity], norm: 'linf', eps, start: 0, count: 30 });
    assert.ok(shard.brokenBy.every((b) => b === -1 || b === -2));
  });

  it('runs a custom PGD list through the same runner and checks the threat model', async () => {
    const pgd = customAttackEntry({ name: 'pgd10', norm: 'linf', eps, steps: 10, stepSize: eps / 4 });
    const strong: SuiteAttackEntry = { name: 'apgd-ce', run: apgd({ iterations: 50 }) };
    const shard = await noLeak(() =>
      runSuiteShard(model, data, { attacks: [pgd, strong], norm: 'linf', eps, start: 0, count: 40, batchSize: 20 }),
    );
    const r = reduceSuite([shard]);
    assert.ok(r.perAttack[0].broke > 0);
    const wide = customAttackEntry({ name: 'pgd-wide', norm: 'linf', eps: 2 * eps, steps: 2 });
    await assert.rejects(
      runSuiteShard(model, data, { attacks: [wide], norm: 'linf', eps, start: 0, count: 10 }),
      /pgd-wide.*threat model/,
    );
  });

  it('rejects bad options with the field named', async () => {
    const attacks = suiteAttacks('fast', { norm: 'linf', numClasses: 10 });
    await assert.rejects(runSuiteShard(model, data, { attacks, norm: 'linf', eps: -1, start: 0, count: 5 }), /eps/);
    await assert.rejects(runSuiteShard(model, data, { attacks, norm: 'linf', eps, start: 190, count: 50 }), /fit/);
    await assert.rejects(
      runSuiteShard(model, data, {
        attacks,
        norm: 'linf',
        eps,
        start: 0,
        count: 5,
        resume: { attack: 0, batch: 0, brokenBy: [-1], cleanPredictions: [0] },
      }),
      /resume/,
    );
    assert.throws(() => suiteAttacks('nope' as 'fast', { norm: 'linf', numClasses: 10 }), /unknown suite/);
    assert.deepEqual(
      suiteAttacks('plus', { norm: 'l2', numClasses: 10 }).map((a) => a.name),
      ['apgd-ce', 'apgd-dlr', 'square', 'apgd-t', 'fab-t'],
    );
    // Two classes: no DLR (it needs a third logit); the targeted attacks still run against the one other class.
    assert.deepEqual(
      suiteAttacks('plus', { norm: 'linf', numClasses: 2 }).map((a) => a.name),
      ['apgd-ce', 'square', 'apgd-t', 'fab-t'],
    );
  });
});
