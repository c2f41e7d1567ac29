import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  configHash,
  EpsilonSchedule,
  LrSchedule,
  migrateTrainingConfig,
  parseTrainingConfig,
  stepFractionOf,
} from '../../../../tensor/training/config';
import { epsilonAt, learningRateAt, pgdStepSize } from '../../../../tensor/training/schedules';

const eps = (input: unknown) => EpsilonSchedule.parse(input);
const lr = (input: unknown) => LrSchedule.parse(input);
const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? ''} ${a} ≠ ${b}`);

describe('epsilon schedules', () => {
  it('constant gives ε_max from the first batch', () => {
    const s = eps({ max: 0.1 });
    for (const p of [0, 0.3, 1, 7.5]) assert.equal(epsilonAt(s, p), 0.1);
  });

  it('linear warm-up is min(ε_max · progress / warmup, ε_max) in fractional epochs', () => {
    const s = eps({ max: 0.1, kind: 'linear', warmupEpochs: 2 });
    close(epsilonAt(s, 0), 0);
    close(epsilonAt(s, 0.5), 0.025);
    close(epsilonAt(s, 1), 0.05);
    close(epsilonAt(s, 1.9), 0.095);
    close(epsilonAt(s, 2), 0.1);
    close(epsilonAt(s, 10), 0.1);
  });

  it('cosine ramps from 0 to ε_max over the warm-up, half-way at its middle', () => {
    const s = eps({ max: 0.2, kind: 'cosine', warmupEpochs: 1 });
    close(epsilonAt(s, 0), 0);
    close(epsilonAt(s, 0.5), 0.1);
    close(epsilonAt(s, 0.25), (0.2 * (1 - Math.cos(Math.PI / 4))) / 2);
    close(epsilonAt(s, 1), 0.2);
    close(epsilonAt(s, 3), 0.2);
    assert.ok(epsilonAt(s, 0.25) < 0.05, 'cosine starts slower than linear');
  });

  it('steps take the last entry at or before the progress, 0 before the first', () => {
    const s = eps({
      max: 0.3,
      kind: 'steps',
      steps: [
        { atEpoch: 1, eps: 0.1 },
        { atEpoch: 2.5, eps: 0.3 },
      ],
    });
    assert.equal(epsilonAt(s, 0), 0);
    assert.equal(epsilonAt(s, 0.99), 0);
    assert.equal(epsilonAt(s, 1), 0.1);
    assert.equal(epsilonAt(s, 2.49), 0.1);
    assert.equal(epsilonAt(s, 2.5), 0.3);
    assert.equal(epsilonAt(s, 9), 0.3);
  });

  it('rejects bad schedules with messages naming the problem', () => {
    assert.throws(() => eps({ max: 0.1, kind: 'steps' }), /non-empty steps/);
    assert.throws(
      () =>
        eps({
          max: 0.1,
          kind: 'steps',
          steps: [
            { atEpoch: 2, eps: 0.05 },
            { atEpoch: 1, eps: 0.1 },
          ],
        }),
      /ascending atEpoch/,
    );
    assert.throws(() => eps({ max: 0.1, kind: 'steps', steps: [{ atEpoch: 0, eps: 0.2 }] }), /exceeds max/);
    assert.throws(() => eps({ max: 0.1, warmupEpoch: 1 }), /warmupEpoch/);
    assert.throws(() => epsilonAt(eps({ max: 0.1 }), -1), /progress ≥ 0/);
  });

  it('PGD step size is a fraction of the current ε', () => {
    close(pgdStepSize(0.1, 0.25), 0.025);
    assert.equal(pgdStepSize(0, 0.25), 0);
    assert.throws(() => pgdStepSize(0.1, 0), /fraction must be > 0/);
  });
});

describe('learning-rate schedules', () => {
  const at = (progress: number) => ({ progress, epochs: 10, batchesPerEpoch: 100 });

  it('constant', () => {
    for (const p of [0, 3.3, 9.99]) assert.equal(learningRateAt(lr({}), 1e-3, at(p)), 1e-3);
  });

  it('step decay multiplies by gamma every stepEvery epochs', () => {
    const s = lr({ type: 'step', stepEvery: 3, gamma: 0.5 });
    close(learningRateAt(s, 0.1, at(0)), 0.1);
    close(learningRateAt(s, 0.1, at(2.99)), 0.1);
    close(learningRateAt(s, 0.1, at(3)), 0.05);
    close(learningRateAt(s, 0.1, at(6.5)), 0.025);
    assert.throws(() => lr({ type: 'step' }), /needs stepEvery/);
  });

  it('cosine goes from the base rate to the floor over the run', () => {
    const s = lr({ type: 'cosine', minLearningRate: 0.01 });
    close(learningRateAt(s, 0.1, at(0)), 0.1);
    close(learningRateAt(s, 0.1, at(5)), 0.055);
    close(learningRateAt(s, 0.1, at(10)), 0.01);
  });

  it('linear warm-up then constant: the first step is already above zero', () => {
    const s = lr({ warmupEpochs: 2 });
    close(learningRateAt(s, 1, at(0)), 0.01 / 2);
    close(learningRateAt(s, 1, at(0.99)), 0.5);
    close(learningRateAt(s, 1, at(1.99)), 1);
    close(learningRateAt(s, 1, at(4)), 1);
  });

  it('linear warm-up then cosine over the remaining epochs', () => {
    const s = lr({ type: 'cosine', warmupEpochs: 2 });
    close(learningRateAt(s, 1, at(0.49)), 0.25);
    close(learningRateAt(s, 1, at(2)), 1);
    close(learningRateAt(s, 1, at(6)), 0.5);
    close(learningRateAt(s, 1, at(10)), 0);
  });
});

describe('training config', () => {
  const minimal = { epochs: 1, batchSize: 8, learningRate: 1e-3 };

  it('fills defaults and hashes stably (key order does not matter)', () => {
    const a = parseTrainingConfig({ ...minimal, epsilon: { max: 0.1 } });
    assert.equal(a.optimizer, 'adam');
    assert.equal(a.attack.steps, 7);
    assert.equal(a.attack.stepFraction, undefined);
    assert.equal(stepFractionOf(a), 0.25);
    assert.equal(stepFractionOf(parseTrainingConfig({ ...minimal, method: 'fgsm-rs' })), 1.25);
    // configs written before the renames (checkpoint headers) still parse, under the new names
    const old = migrateTrainingConfig({
      ...minimal,
      epsilon: { max: 0.1, schedule: 'linear', warmupEpochs: 1 },
      attack: { stepSizeFraction: 0.3 },
    });
    const migrated = parseTrainingConfig(old);
    assert.equal(migrated.epsilon?.kind, 'linear');
    assert.equal(migrated.attack.stepFraction, 0.3);
    assert.equal(a.divergence.maxLoss, 100);
    assert.equal(a.gradientAccumulation, 1);
    const b = parseTrainingConfig({ epsilon: { max: 0.1 }, learningRate: 1e-3, batchSize: 8, epochs: 1 });
    assert.equal(configHash(a), configHash(b));
    assert.notEqual(configHash(a), configHash(parseTrainingConfig({ ...minimal, epsilon: { max: 0.2 } })));
  });

  it('refuses typos and out-of-range values, naming the field', () => {
    assert.throws(() => parseTrainingConfig({ ...minimal, epsilion: { max: 0.1 } }), /epsilion/);
    assert.throws(() => parseTrainingConfig({ ...minimal, batchSize: 0 }), /batchSize/);
    assert.throws(() => parseTrainingConfig({ ...minimal, cleanFraction: 1.5 }), /cleanFraction/);
    assert.throws(() => parseTrainingConfig({ ...minimal, momentum: 0.9 }), /momentum applies to optimizer "sgd"/);
    assert.throws(() => parseTrainingConfig({ epochs: 1, batchSize: 8 }), /learningRate/);
  });
});
