/** The gate's decision as a pure function: thresholds, boundaries, which attack it reads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateGate, gateRobust, summarize } from '../../../workflows/gate';
import type { Metrics } from '../../../schemas/payloads';
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

/** A hardened model's suite result: 80 % clean, the waterfall apgd-ce → apgd-t → square, and pgd20 on its own. */
const suite = (overrides: Partial<Metrics> = {}): Metrics =>
  metrics(0.8, 0.62, {
    suite: 'standard',
    robust: [{ attack: 'pgd20', eps: 0.1, accuracy: 0.62, interval: { low: 0.59, high: 0.65 } }],
    suiteAttacks: [
      { attack: 'apgd-ce', broke: 200, accuracyAfter: 0.6, interval: { low: 0.57, high: 0.63 } },
      { attack: 'apgd-t', broke: 20, accuracyAfter: 0.58, interval: { low: 0.549, high: 0.61 } },
      { attack: 'square', broke: 0, accuracyAfter: 0.58, interval: { low: 0.549, high: 0.61 } },
    ],
    worstCase: { accuracy: 0.575, robust: 575, eps: 0.1, interval: { low: 0.544, high: 0.605 } },
    sanity: [
      { name: 'eps-monotone', fired: false, evaluated: true, numbers: { points: 6 } },
      { name: 'zero-gradients', fired: false, evaluated: true, numbers: { share: 0 } },
      { name: 'black-box', fired: false, evaluated: false, numbers: {} },
    ],
    ...overrides,
  });

test('reads the per-example worst case by default, with its interval and what it covers', () => {
  const d = evaluateGate({ ...gate, minRobustAccuracy: 0.6 }, baseline, suite());
  assert.equal(d.passed, false, 'the worst case (57.5%) is below 60% although pgd20 alone says 62%');
  assert.equal(
    d.reasons[0],
    'robust accuracy 57.5% (95% interval 54.4%–60.5%) as the per-example worst case over the standard suite ' +
      '(apgd-ce, apgd-t, square) and pgd20 (ε=0.1) is below the required 60.0%',
  );
  assert.equal(d.reasons.at(-1), 'no gradient-masking flag fired (2 sanity checks)');
  assert.equal(summarize({}, suite()).robust, 0.575);
});

test('a named attack: a listed one on its own, a suite one after every earlier attack', () => {
  assert.equal(gateRobust({ attack: 'pgd20' }, suite())?.accuracy, 0.62);
  const apgdT = gateRobust({ attack: 'apgd-t' }, suite());
  assert.equal(apgdT?.accuracy, 0.58);
  assert.match(evaluateGate({ ...gate, attack: 'apgd-t' }, baseline, suite()).reasons[0], /after apgd-ce → apgd-t/);
  assert.equal(gateRobust({ attack: 'fab-t' }, suite()), undefined);
});

test('a fired masking flag refuses promotion, naming the check and its numbers, unless switched off', () => {
  const flagged = suite({
    sanity: [
      {
        name: 'black-box',
        fired: true,
        evaluated: true,
        numbers: { whiteBox: 0.589, afterBlackBox: 0.57712, broke: 12, upper: 0.588 },
      },
    ],
  });
  const d = evaluateGate(gate, baseline, flagged);
  assert.equal(d.passed, false);
  assert.equal(
    d.reasons.at(-1),
    'sanity check black-box fired (expected: the black-box attack (Square) finds nothing the white-box ones ' +
      'missed): whiteBox=0.589, afterBlackBox=0.5771, broke=12, upper=0.588',
  );
  const off = evaluateGate({ ...gate, failOnMaskingFlags: false }, baseline, flagged);
  assert.equal(off.passed, true);
  assert.match(off.reasons.at(-1)!, /ignored, gate\.failOnMaskingFlags is false/);
});
