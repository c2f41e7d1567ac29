import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { attack } from '../../../../tensor/attacks';
import { initBackend } from '../../../../tensor/backend';
import { FASHION_MNIST_DIR, loadFashionMnist, makeBatch, sequentialOrder, subset } from '../../../../tensor/data';
import type { ImageDataset } from '../../../../tensor/data';
import { Trainer } from '../../../../tensor/training/trainer';
import type { TrainingConfigInput } from '../../../../tensor/training/config';

/**
 * End to end on real data (wasm, ~30 s): a small CNN trained on 1024 Fashion-MNIST images is fragile under PGD;
 * adversarial fine-tuning of the same model raises its robust accuracy on the same 256 test images clearly.
 * Fails if the attack does not attack (standard robust accuracy stays high) or if adversarial training does not
 * train on adversarial examples (no robustness gain).
 */

const EPS = 0.1;
let train: ImageDataset;
let test: ImageDataset;

function smallCnn(seed: number): tf.LayersModel {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed + k });
  const m = tf.sequential();
  m.add(
    tf.layers.conv2d({
      inputShape: [28, 28, 1],
      filters: 8,
      kernelSize: 3,
      strides: 2,
      activation: 'relu',
      kernelInitializer: init(0),
    }),
  );
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init(1) }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 10, kernelInitializer: init(2) }));
  return m;
}

/** Accuracy on `test` of the clean images (eps 0) or of PGD-10 (step ε/4, one random start) against them. */
function accuracy(model: tf.LayersModel, eps: number): number {
  const { x, y } = makeBatch(test, sequentialOrder(test.count), 0, test.count);
  return tf.tidy(() => {
    const input = eps > 0 ? attack(model, x, y, { norm: 'linf', eps, stepSize: eps / 4, steps: 10, seed: 3 }) : x;
    const acc = tf.mean(tf.equal(tf.argMax(model.predict(input) as tf.Tensor, 1), y).toFloat()).dataSync()[0];
    tf.dispose([x, y]);
    return acc;
  });
}

async function train_(model: tf.LayersModel, config: TrainingConfigInput): Promise<void> {
  const t = await Trainer.create({ model, train, config });
  try {
    while (!t.done) await t.step();
  } finally {
    t.dispose();
  }
}

before(async () => {
  await initBackend('wasm', { log: () => {} });
  train = subset(await loadFashionMnist(FASHION_MNIST_DIR, 'train'), { strategy: 'first', n: 1024 });
  test = subset(await loadFashionMnist(FASHION_MNIST_DIR, 'test'), { strategy: 'first', n: 256 });
});

describe('adversarial training on Fashion-MNIST', () => {
  let baseline = 0;
  before(() => {
    baseline = tf.memory().numTensors;
  });
  after(() => {
    assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
  });

  it('PGD fine-tuning raises robust accuracy clearly over the standard model', async (t) => {
    const model = smallCnn(1);
    try {
      await train_(model, { epochs: 4, batchSize: 32, learningRate: 3e-3, seed: 1 });
      const std = { clean: accuracy(model, 0), robust: accuracy(model, EPS) };

      await train_(model, {
        epochs: 4,
        batchSize: 32,
        learningRate: 2e-3,
        seed: 2,
        epsilon: { max: EPS, kind: 'linear', warmupEpochs: 0.5 },
        attack: { steps: 4, stepFraction: 0.5 },
      });
      const adv = { clean: accuracy(model, 0), robust: accuracy(model, EPS) };
      const msg = `standard ${JSON.stringify(std)}, adversarial ${JSON.stringify(adv)}`;
      t.diagnostic(msg);
      assert.ok(std.clean >= 0.65, `the standard model should learn: ${msg}`);
      assert.ok(std.robust <= 0.4, `PGD should break the standard model: ${msg}`);
      assert.ok(adv.clean >= 0.6, `fine-tuning should keep clean accuracy: ${msg}`);
      assert.ok(adv.robust >= std.robust + 0.15, `fine-tuning should raise robust accuracy: ${msg}`);
    } finally {
      model.dispose();
    }
  });

  for (const [recipe, extra] of [
    ['fgsm-rs', { learningRate: 5e-3, lrSchedule: { type: 'cyclic' } }],
    ['mart', { learningRate: 2e-3, attack: { steps: 4, stepFraction: 0.5 } }],
  ] as const) {
    it(`${recipe} fine-tuning raises robust accuracy clearly over the standard model`, async (t) => {
      const model = smallCnn(1);
      try {
        await train_(model, { epochs: 4, batchSize: 32, learningRate: 3e-3, seed: 1 });
        const std = { clean: accuracy(model, 0), robust: accuracy(model, EPS) };
        await train_(model, {
          epochs: 4,
          batchSize: 32,
          seed: 2,
          method: recipe,
          epsilon: { max: EPS, kind: 'linear', warmupEpochs: 0.5 },
          ...extra,
        });
        const adv = { clean: accuracy(model, 0), robust: accuracy(model, EPS) };
        const msg = `standard ${JSON.stringify(std)}, ${recipe} ${JSON.stringify(adv)}`;
        t.diagnostic(msg);
        assert.ok(std.robust <= 0.4, `PGD should break the standard model: ${msg}`);
        assert.ok(adv.clean >= 0.6, `fine-tuning should keep clean accuracy: ${msg}`);
        assert.ok(adv.robust >= std.robust + 0.15, `fine-tuning should raise robust accuracy: ${msg}`);
      } finally {
        model.dispose();
      }
    });
  }
});
