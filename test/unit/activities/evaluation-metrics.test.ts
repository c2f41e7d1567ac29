/** The reduction of shard results to metrics: worst case per example, the waterfall, intervals, per class. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shardFile } from '../../../activities/evaluate-shard';
import { buildMetrics, interval95 as wilson } from '../../../activities/evaluation-metrics';
import type { SuiteShardResult } from '../../../tensor/eval/reduce';
import { parseSpec } from '../../../schemas/spec';

const result = (start: number, labels: number[], preds: number[], brokenBy: number[], attacks: string[]) =>
  ({
    start,
    count: labels.length,
    labels,
    cleanPredictions: preds,
    brokenBy,
    attacks,
    seconds: 1,
    backend: 'cpu',
  }) satisfies SuiteShardResult;
const extras = { epsCurve: [], examples: [], sanity: [] };

test('Wilson: the textbook values, and the ends clamp to 0 and 1', () => {
  const w = wilson(70, 100);
  assert.ok(Math.abs(w.low - 0.6041) < 1e-3 && Math.abs(w.high - 0.781) < 1e-3, JSON.stringify(w));
  assert.equal(wilson(0, 10).low, 0);
  assert.equal(wilson(10, 10).high, 1);
  assert.deepEqual(wilson(0, 0), { low: 0, high: 1 });
});

test('standard suite plus a listed attack: the worst case counts a point broken by either', () => {
  const spec = parseSpec({ version: 1, evaluation: { suite: 'fast', attacks: [{ name: 'pgd20' }] } });
  // Six images, two shards. Image 0 wrong on clean; 1 broken by apgd-ce; 2 by apgd-t; 3 robust to the suite but
  // broken by pgd20; 4 and 5 robust to everything.
  const names = ['apgd-ce', 'apgd-t'];
  const s0 = shardFile(spec, 0, 3, [
    result(0, [0, 1, 2], [1, 1, 2], [-2, 0, 1], names),
    result(0, [0, 1, 2], [1, 1, 2], [-2, -1, 0], ['pgd20']),
  ]);
  const s1 = shardFile(spec, 3, 3, [
    result(3, [0, 1, 2], [0, 1, 2], [-1, -1, -1], names),
    result(3, [0, 1, 2], [0, 1, 2], [0, -1, -1], ['pgd20']),
  ]);
  const m = buildMetrics({ spec, shards: [s1, s0], extras, numClasses: 3, seconds: 5, backend: 'cpu' });
  assert.equal(m.clean, 5 / 6);
  assert.equal(m.suite, 'fast');
  assert.deepEqual(
    m.suiteAttacks?.map((s) => [s.attack, s.broke, s.accuracyAfter]),
    [
      ['apgd-ce', 1, 4 / 6],
      ['apgd-t', 1, 3 / 6],
    ],
  );
  assert.deepEqual(
    m.robust.map((r) => [r.attack, r.accuracy]),
    [['pgd20', 3 / 6]],
  );
  assert.equal(m.worstCase?.robust, 2);
  assert.equal(m.worstCase?.accuracy, 2 / 6);
  assert.deepEqual(m.worstCase?.interval, wilson(2, 6));
  assert.deepEqual(m.confusion, [
    [1, 1, 0],
    [0, 2, 0],
    [0, 0, 2],
  ]);
  assert.deepEqual(
    m.perClass.map((c) => [c.clean, c.robust]),
    [
      [0.5, 0],
      [1, 0.5],
      [1, 0.5],
    ],
  );
  assert.equal(m.images, 6);
  assert.equal(m.shards, 2);
});

test('custom: the waterfall is the listed attacks in order, each point credited to the first that broke it', () => {
  const spec = parseSpec({ version: 1, evaluation: { attacks: [{ name: 'fgsm', steps: 1 }, { name: 'pgd20' }] } });
  const file = shardFile(spec, 0, 4, [
    result(0, [0, 0, 0, 0], [0, 0, 0, 1], [0, -1, 0, -2], ['fgsm']),
    result(0, [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, -1, -2], ['pgd20']),
  ]);
  assert.deepEqual(file.suite.brokenBy, [0, 1, 0, -2]);
  const m = buildMetrics({ spec, shards: [file], extras, numClasses: 1 + 1, seconds: 1, backend: 'cpu' });
  assert.deepEqual(
    m.suiteAttacks?.map((s) => [s.attack, s.broke]),
    [
      ['fgsm', 2],
      ['pgd20', 1],
    ],
  );
  assert.equal(m.worstCase?.accuracy, 0);
  assert.deepEqual(
    m.robust.map((r) => r.accuracy),
    [0.25, 0.25],
  );
});

test('shards that do not tile the images are refused', () => {
  const spec = parseSpec({ version: 1, evaluation: { suite: 'custom' } });
  const a = shardFile(spec, 0, 1, [result(0, [0], [0], [-1], ['pgd20'])]);
  const b = shardFile(spec, 2, 1, [result(2, [0], [0], [-1], ['pgd20'])]);
  assert.throws(
    () => buildMetrics({ spec, shards: [a, b], extras, numClasses: 1, seconds: 1, backend: 'cpu' }),
    /do not tile the images: \[0, 1\) then 2/,
  );
});
