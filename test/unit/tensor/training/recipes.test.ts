import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { parseTrainingConfig } from '../../../../tensor/training/config';
import type { TrainingConfigInput } from '../../../../tensor/training/config';
import { martLoss } from '../../../../tensor/training/mart';
import { learningRateAt } from '../../../../tensor/training/schedules';
import { Trainer } from '../../../../tensor/training/trainer';
import { flatWeights, syntheticDataset, tinyModel } from './helpers';

const data = syntheticDataset(48);

/** Trains one optimizer step (one batch of all 48 images) from the same initial weights; returns before/after. */
async function oneStep(
  config: Omit<TrainingConfigInput, 'epochs' | 'batchSize'>,
): Promise<{ w0: Float32Array; w1: Float32Array }> {
  const model = tinyModel({ seed: 5 });
  const t = await Trainer.create({ model, train: data, config: { ...config, epochs: 1, batchSize: 48, seed: 3 } });
  try {
    const w0 = await flatWeights(model);
    await t.step();
    return { w0, w1: await flatWeights(model) };
  } finally {
    t.dispose();
    model.dispose();
  }
}

describe('weight decay', () => {
  for (const optimizer of ['adam', 'sgd'] as const) {
    const how = optimizer === 'adam' ? 'AdamW: decoupled, outside the moments' : 'L2 added to the gradient';
    it(`${optimizer}: one step with λ moves each weight by −lr·λ·w0 more than without (${how})`, async () => {
      const baseline = tf.memory().numTensors;
      const lr = 0.05;
      const wd = 0.1;
      // (the first step of momentum SGD is a plain SGD step, so the formula is the same for both)
      const extra = optimizer === 'sgd' ? { momentum: 0.9 } : {};
      const plain = await oneStep({ optimizer, learningRate: lr, ...extra });
      const decayed = await oneStep({ optimizer, learningRate: lr, weightDecay: wd, ...extra });
      let moved = 0;
      for (let i = 0; i < plain.w0.length; i++) {
        assert.equal(decayed.w0[i], plain.w0[i]);
        const expected = -lr * wd * plain.w0[i];
        const got = decayed.w1[i] - plain.w1[i];
        assert.ok(Math.abs(got - expected) <= 1e-6 + 1e-3 * Math.abs(expected), `weight ${i}: ${got} vs ${expected}`);
        if (Math.abs(expected) > 1e-4) moved++;
      }
      assert.ok(moved > plain.w0.length / 2, 'most weights should be decayed measurably');
      assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
    });
  }

  it('is refused outside [0, 1]', () => {
    assert.throws(
      () => parseTrainingConfig({ epochs: 1, batchSize: 8, learningRate: 1e-3, weightDecay: 2 }),
      /weightDecay/,
    );
  });
});

describe('MART loss', () => {
  it('matches the formula on a hand-computed case', () => {
    const baseline = tf.memory().numTensors;
    const clean = [
      [2, 0.5, -1],
      [0, 1, 0.3],
    ];
    const adv = [
      [0.5, 1.5, -0.2],
      [0.2, 0.1, 1.1],
    ];
    const labels = [0, 1];
    const beta = 5;
    const softmax = (z: number[]) => {
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    };
    let ce = 0;
    let bce2 = 0;
    let robust = 0;
    for (let i = 0; i < 2; i++) {
      const pa = softmax(adv[i]);
      const pc = softmax(clean[i]);
      const y = labels[i];
      ce += -Math.log(pa[y]);
      const wrong = Math.max(...pa.filter((_, k) => k !== y));
      bce2 += -Math.log(1.0001 - wrong + 1e-12);
      const kl = pc.reduce((a, p, k) => a + p * (Math.log(p) - Math.log(pa[k] + 1e-12)), 0);
      robust += kl * (1.0000001 - pc[y]);
    }
    const expected = ce / 2 + bce2 / 2 + (beta * robust) / 2;
    const got = tf.tidy(
      () => martLoss(tf.tensor2d(clean), tf.tensor2d(adv), tf.tensor1d(labels, 'int32'), beta).dataSync()[0],
    );
    assert.ok(Math.abs(got - expected) < 1e-5, `MART loss ${got}, expected ${expected}`);
    // β = 0 leaves the boosted cross-entropy alone
    const bceOnly = tf.tidy(
      () => martLoss(tf.tensor2d(clean), tf.tensor2d(adv), tf.tensor1d(labels, 'int32'), 0).dataSync()[0],
    );
    assert.ok(Math.abs(bceOnly - (ce + bce2) / 2) < 1e-5);
    assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
  });
});

describe('recipes in the trainer', () => {
  it('default β and step fraction per recipe, and the older tradesBeta still means TRADES', () => {
    const base = { epochs: 1, batchSize: 8, learningRate: 1e-3, epsilon: { max: 0.1 } };
    assert.throws(() => parseTrainingConfig({ ...base, method: 'pgd', beta: 3 }), /beta applies/);
    assert.throws(() => parseTrainingConfig({ ...base, method: 'mart', tradesBeta: 3 }), /tradesBeta applies/);
    assert.doesNotThrow(() => parseTrainingConfig({ ...base, tradesBeta: 3 }));
  });

  for (const method of ['pgd', 'fgsm-rs', 'trades', 'mart'] as const) {
    it(`${method}: trains, changes the weights, loss finite, no tensors left behind`, async () => {
      const baseline = tf.memory().numTensors;
      const model = tinyModel({ seed: 5 });
      const t = await Trainer.create({
        model,
        train: data,
        config: {
          epochs: 1,
          batchSize: 16,
          learningRate: 0.01,
          seed: 1,
          method,
          epsilon: { max: 0.1 },
          attack: { steps: 2 },
          cleanFraction: 0.25,
          weightDecay: 0.01,
        },
      });
      try {
        const w0 = await flatWeights(model);
        while (!t.done) {
          const r = await t.step();
          assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
        }
        const w1 = await flatWeights(model);
        assert.ok(w1.some((v, i) => v !== w0[i]));
      } finally {
        t.dispose();
        model.dispose();
      }
      assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
    });
  }

  it('the recipes differ: the same run under each recipe ends with different weights', async () => {
    const out: Float32Array[] = [];
    for (const method of ['pgd', 'fgsm-rs', 'trades', 'mart'] as const) {
      const model = tinyModel({ seed: 5 });
      const t = await Trainer.create({
        model,
        train: data,
        config: {
          epochs: 1,
          batchSize: 16,
          learningRate: 0.01,
          seed: 1,
          method,
          epsilon: { max: 0.1 },
          attack: { steps: 2 },
        },
      });
      try {
        while (!t.done) await t.step();
        out.push(await flatWeights(model));
      } finally {
        t.dispose();
        model.dispose();
      }
    }
    for (let i = 0; i < out.length; i++)
      for (let j = i + 1; j < out.length; j++)
        assert.ok(
          out[i].some((v, k) => v !== out[j][k]),
          `${i} vs ${j}`,
        );
  });
});

describe('cyclic learning rate', () => {
  it('rises linearly to the base rate at 40% of the run and falls to 0 at its end', () => {
    const s = { type: 'cyclic' as const, warmupEpochs: 0, gamma: 0.1, minLearningRate: 0 };
    const at = (progress: number) => learningRateAt(s, 1, { progress, epochs: 10, batchesPerEpoch: 10 });
    assert.ok(Math.abs(at(0) - 0.1 / 4) < 1e-12); // (0 + 1/10) / 10 of the run, peak at 0.4
    assert.ok(Math.abs(at(3.9) - 1) < 1e-12);
    assert.ok(Math.abs(at(6.9) - 0.5) < 1e-12);
    assert.ok(at(9.9) < 1e-12 && at(9.9) >= 0);
    const peak = learningRateAt({ ...s, cyclicPeak: 0.5 }, 2, { progress: 4.9, epochs: 10, batchesPerEpoch: 10 });
    assert.ok(Math.abs(peak - 2) < 1e-12);
  });
});
