/** The gate's decision as a pure function: thresholds, boundaries, which attack it reads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateGate, gateRobust, summarize } from '../../../workflows/gate';
import { metrics } from './fixtures';

const gate = { minRobustAccuracy: 0.5, maxCleanAccuracyDrop: 0.1 };
const baseline = metrics(0.9, 0.02);

test('passes when robust accuracy reaches the minimum and clean accuracy drops no more than allowed', () => {
  const d = evaluateGate(gate, baseline, metrics(0.85, 0.55));
  assert.equal(d.passed, true);
  assert.equal(d.decidedBy, 'gate');
  assert.deepEqual(d.reasons, [
    'robust accuracy 55.0% under pgd20 (ε=0.1) meets the required 50.0%',
    'clean accuracy 85.0% vs baseline 90.0%: a drop of 5.0%, within the allowed 10.0%',
  ]);
});

test('boundaries are inclusive (no float surprises at exactly the threshold)', () => {
  assert.equal(evaluateGate(gate, metrics(0.9, 0), metrics(0.8, 0.5)).passed, true);
  assert.equal(evaluateGate(gate, metrics(0.9, 0), metrics(0.7999, 0.5)).passed, false);
  assert.equal(evaluateGate(gate, metrics(0.9, 0), metrics(0.85, 0.4999)).passed, false);
});

test('fails on either criterion, with a reason for each', () => {
  const lowRobust = evaluateGate(gate, baseline, metrics(0.88, 0.3));
  assert.equal(lowRobust.passed, false);
  assert.match(lowRobust.reasons[0], /30\.0% .* is below the required 50\.0%/);
  const bigDrop = evaluateGate(gate, baseline, metrics(0.7, 0.6));
  assert.equal(bigDrop.passed, false);
  assert.match(bigDrop.reasons[1], /a drop of 20\.0%, beyond the allowed 10\.0%/);
  const better = evaluateGate(gate, baseline, metrics(0.95, 0.6));
  assert.match(better.reasons[1], /no drop, within/);
});

test('reads the named attack, else the weakest one; a missing result fails', () => {
  const m = metrics(0.85, 0, {
    robust: [
      { attack: 'fgsm', eps: 0.1, accuracy: 0.7 },
      { attack: 'pgd20', eps: 0.1, accuracy: 0.45 },
    ],
  });
  assert.equal(gateRobust({}, m)?.attack, 'pgd20');
  assert.equal(gateRobust({ attack: 'fgsm' }, m)?.accuracy, 0.7);
  assert.equal(evaluateGate(gate, baseline, m).passed, false);
  assert.equal(evaluateGate({ ...gate, attack: 'fgsm' }, baseline, m).passed, true);
  const missing = evaluateGate({ ...gate, attack: 'cw' }, baseline, m);
  assert.equal(missing.passed, false);
  assert.equal(missing.reasons[0], 'no robust accuracy for attack cw in the benchmark');
  assert.equal(evaluateGate(gate, baseline, metrics(0.9, 0, { robust: [] })).passed, false);
  assert.deepEqual(summarize({}, m), { clean: 0.85, robust: 0.45, robustByAttack: m.robust });
});
