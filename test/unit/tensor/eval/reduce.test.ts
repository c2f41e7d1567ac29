import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reduceSuite, wilson } from '../../../../tensor/eval/reduce';
import type { SuiteShardResult } from '../../../../tensor/eval/reduce';

const close = (a: number, b: number, tol = 5e-5) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

describe('wilson', () => {
  it('matches published 95 % Wilson score intervals', () => {
    // Newcombe (1998), Table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605; 0/20 → 0–0.1611; 1/29 → 0.0061–0.1718.
    for (const [k, n, lo, hi] of [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
      [1, 29, 0.0061, 0.1718],
    ]) {
      const w = wilson(k, n);
      close(w.lower, lo, 1e-4);
      close(w.upper, hi, 1e-4);
    }
  });

  it('is symmetric, bounded, and narrows as n grows', () => {
    const a = wilson(700, 1000);
    const b = wilson(300, 1000);
    close(a.lower, 1 - b.upper, 1e-12);
    assert.ok(a.upper - a.lower < wilson(70, 100).upper - wilson(70, 100).lower);
    assert.deepEqual(wilson(0, 0), { lower: 0, upper: 1 });
    assert.equal(wilson(10, 10).upper, 1);
    assert.throws(() => wilson(3, 2), /0 ≤ k ≤ n/);
    assert.throws(() => wilson(1.5, 2), /integers/);
  });
});

function shard(start: number, labels: number[], brokenBy: number[]): SuiteShardResult {
  return {
    start,
    count: labels.length,
    labels,
    cleanPredictions: labels.map((l, i) => (brokenBy[i] === -2 ? (l + 1) % 3 : l)),
    brokenBy,
    attacks: ['a', 'b'],
    seconds: 1,
    backend: 'cpu',
  };
}

describe('reduceSuite', () => {
  it('reduces shards in any order to clean, per-attack, worst case and per class', () => {
    const r = reduceSuite([shard(4, [0, 1, 2], [1, -1, -2]), shard(0, [0, 0, 1, 2], [-1, 0, 0, -2])]);
    assert.equal(r.count, 7);
    assert.deepEqual(r.brokenBy, [-1, 0, 0, -2, 1, -1, -2]);
    assert.equal(r.clean.correct, 5);
    assert.deepEqual(
      r.perAttack.map((a) => [a.name, a.broke, a.after.correct]),
      [
        ['a', 2, 3],
        ['b', 1, 2],
      ],
    );
    assert.equal(r.worstCase.correct, 2);
    close(r.worstCase.lower, wilson(2, 7).lower, 1e-12);
    assert.deepEqual(
      r.perClass.map((c) => [c.label, c.count, c.clean.correct, c.worstCase.correct]),
      [
        [0, 3, 3, 1],
        [1, 2, 2, 1],
        [2, 2, 0, 0],
      ],
    );
    assert.equal(r.seconds, 2);
  });

  it('rejects overlapping shards, mismatched attack lists and inconsistent flags', () => {
    assert.throws(() => reduceSuite([shard(0, [0, 1], [-1, -1]), shard(1, [0], [-1])]), /overlap/);
    const other = { ...shard(5, [0], [-1]), attacks: ['a'] };
    assert.throws(() => reduceSuite([shard(0, [0], [-1]), other]), /ran attacks/);
    const bad = { ...shard(0, [0], [-1]), cleanPredictions: [2] };
    assert.throws(() => reduceSuite([bad]), /wrong on clean/);
    assert.throws(() => reduceSuite([shard(0, [0], [2])]), /brokenBy/);
  });
});
