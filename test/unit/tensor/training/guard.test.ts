import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../tensor/backend';
import { FASHION_MNIST_DIR, loadFashionMnist, subset } from '../../../../tensor/data';
import type { ImageDataset } from '../../../../tensor/data';
import type { TrainingConfigInput } from '../../../../tensor/training/config';
import { Trainer } from '../../../../tensor/training/trainer';
import { flatWeights, sameBits, tinyModel } from './helpers';

/**
 * The guard on real data (wasm, ~1 min): the PGD probe after each epoch on held-out training images, the revert on
 * a collapse of its robust accuracy, and the best epoch kept at the end.
 */
let train: ImageDataset;

before(async () => {
  await initBackend('wasm', { log: () => {} });
  train = subset(await loadFashionMnist(FASHION_MNIST_DIR, 'train'), { strategy: 'first', n: 1200 });
});

const fm = () => tinyModel({ side: 28, numClasses: 10, filters: 8, seed: 5 });

async function run(model: tf.LayersModel, config: TrainingConfigInput, onEpoch?: (epoch: number) => Promise<void>) {
  const t = await Trainer.create({ model, train, config });
  try {
    while (!t.done) {
      const r = await t.step();
      if (r.epochSummary && onEpoch) await onEpoch(r.epochSummary.epoch);
    }
    return { guard: t.guard, history: t.epochHistory.map((h) => h.probe!), cursor: t.cursor, probeCount: t.probeCount };
  } finally {
    t.dispose();
  }
}

describe('training guard', () => {
  it('holds out the probe images and records a probe per epoch', async () => {
    const model = fm();
    try {
      const t = await Trainer.create({
        model,
        train,
        config: { epochs: 1, batchSize: 100, learningRate: 1e-3, epsilon: { max: 0.1 }, guard: { probeImages: 100 } },
      });
      try {
        assert.equal(t.probeCount, 100);
        assert.equal(t.trainCount, 1100);
        assert.equal(t.batchesPerEpoch, 11);
      } finally {
        t.dispose();
      }
      // capped at a tenth of the data
      const capped = await Trainer.create({
        model,
        train,
        config: { epochs: 1, batchSize: 100, learningRate: 1e-3, epsilon: { max: 0.1 }, guard: { probeImages: 5000 } },
      });
      assert.equal(capped.probeCount, 120);
      capped.dispose();
    } finally {
      model.dispose();
    }
  });

  it('a forced catastrophic overfitting (FGSM without random start at a large step) is detected and reverted', async (t) => {
    const baseline = tf.memory().numTensors;
    const model = fm();
    try {
      // a robust start: PGD training
      await run(model, {
        epochs: 2,
        batchSize: 32,
        learningRate: 5e-3,
        seed: 1,
        epsilon: { max: 0.1 },
        attack: { steps: 3, stepFraction: 0.5 },
      });
      const start = await flatWeights(model);
      // then single-step training without a random start, at 3ε and a high learning rate
      const r = await run(model, {
        epochs: 4,
        batchSize: 32,
        learningRate: 0.03,
        seed: 2,
        method: 'fgsm-rs',
        epsilon: { max: 0.1 },
        attack: { randomStart: false, stepFraction: 3 },
        guard: { probeImages: 100 },
      });
      t.diagnostic(JSON.stringify(r));
      const o = r.guard.overfitting;
      assert.ok(o, `the collapse should be detected: ${JSON.stringify(r)}`);
      assert.ok(o.previousRobust - o.robust > 0.2);
      assert.equal(r.cursor.epoch, o.epoch + 1, 'training stops at the epoch of the collapse');
      assert.ok(r.cursor.epoch < 4);
      assert.equal(r.guard.finalEpoch, o.previousEpoch);
      // (deterministic on wasm: the collapse comes in the first epoch, so the revert point is the starting model)
      assert.equal(o.previousEpoch, -1);
      assert.ok(sameBits(await flatWeights(model), start), 'the model should hold the starting weights again');
    } finally {
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
  });

  it('keepBest promotes the epoch with the best probe robust accuracy, not the last', async () => {
    const config: TrainingConfigInput = {
      epochs: 5,
      batchSize: 32,
      learningRate: 0.01,
      seed: 1,
      method: 'fgsm-rs',
      epsilon: { max: 0.1 },
      attack: { randomStart: false, stepFraction: 2 },
      guard: { probeImages: 100, maxDrop: 1, keepBest: false },
    };
    // the same run twice: once recording the weights of every epoch, once keeping the best
    const perEpoch: Float32Array[] = [];
    const m1 = fm();
    let last;
    try {
      last = await run(m1, config, async () => {
        perEpoch.push(await flatWeights(m1));
      });
    } finally {
      m1.dispose();
    }
    const robust = last.history.map((p) => p.robust);
    let best = 0;
    robust.forEach((r, i) => {
      if (r >= robust[best]) best = i;
    });
    assert.equal(last.guard.bestEpoch, best);
    assert.equal(last.guard.finalEpoch, 4, 'without keepBest the last epoch stays');
    assert.ok(best < 4, `this run's best epoch should not be its last: ${robust}`);

    const m2 = fm();
    try {
      const kept = await run(m2, { ...config, guard: { ...config.guard!, keepBest: true } });
      assert.deepEqual(
        kept.history.map((p) => p.robust),
        robust,
      );
      assert.equal(kept.guard.finalEpoch, best);
      assert.ok(sameBits(await flatWeights(m2), perEpoch[best]), 'the model should hold the best epoch’s weights');
    } finally {
      m2.dispose();
    }
  });
});
