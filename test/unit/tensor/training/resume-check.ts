import assert from 'node:assert/strict';
import type * as tf from '@tensorflow/tfjs';
import type { TrainingConfigInput } from '../../../../tensor/training/config';
import { Trainer } from '../../../../tensor/training/trainer';
import { flatWeights, sameBits, syntheticDataset, tinyModel } from './helpers';

/** 56 images in batches of 16: 16, 16, 16, 8 per epoch. */
const data = syntheticDataset(56);
const base: TrainingConfigInput = { epochs: 2, batchSize: 16, learningRate: 0.01, seed: 11 };

/** Configs that exercise every piece of state a checkpoint must carry. */
export const RESUME_CONFIGS: [string, TrainingConfigInput][] = [
  [
    'Adam, linear ε warm-up, clean fraction, 2 restarts, accumulation 2, cosine LR',
    {
      ...base,
      epsilon: { max: 0.1, kind: 'linear', warmupEpochs: 1 },
      attack: { steps: 3, restarts: 2 },
      cleanFraction: 0.25,
      gradientAccumulation: 2,
      lrSchedule: { type: 'cosine', warmupEpochs: 0.5 },
    },
  ],
  [
    'SGD momentum, TRADES, L2, label smoothing',
    {
      ...base,
      optimizer: 'sgd',
      momentum: 0.9,
      learningRate: 0.05,
      epsilon: { max: 0.5, kind: 'cosine', warmupEpochs: 1 },
      attack: { norm: 'l2', steps: 2 },
      tradesBeta: 3,
      labelSmoothing: 0.1,
    },
  ],
  [
    'AdamW, FGSM-RS, cyclic LR, guard (probe, best-so-far weights) with keepBest',
    {
      ...base,
      weightDecay: 0.05,
      method: 'fgsm-rs',
      lrSchedule: { type: 'cyclic' },
      epsilon: { max: 0.1 },
      guard: { probeImages: 5, steps: 2, keepBest: true },
    },
  ],
  [
    'SGD momentum with weight decay, MART, guard',
    {
      ...base,
      optimizer: 'sgd',
      momentum: 0.9,
      learningRate: 0.05,
      weightDecay: 0.01,
      method: 'mart',
      epsilon: { max: 0.2 },
      attack: { steps: 2 },
      guard: { probeImages: 5, steps: 2, maxDrop: 0.5 },
    },
  ],
];

async function runAll(t: Trainer): Promise<void> {
  while (!t.done) await t.step();
}

/** Weights, optimizer slots and counters of a run, for bitwise comparison. */
async function fingerprint(t: Trainer, model: tf.LayersModel) {
  const s = await t.state();
  const slots = new Float32Array(s.optimizer.slots.reduce((a, x) => a + x.data.length, 0));
  let o = 0;
  for (const x of s.optimizer.slots) {
    slots.set(x.data, o);
    o += x.data.length;
  }
  return {
    weights: await flatWeights(model),
    slots,
    counters: JSON.stringify([
      s.cursor,
      s.done,
      s.optimizerSteps,
      s.optimizer.iterations,
      s.optimizer.accBeta1,
      s.optimizer.accBeta2,
      s.rngState,
      s.metrics.history.map((h) => [h.meanLoss, h.meanEps, h.lastLr, h.probe]),
      s.guard && { ...s.guard, previous: s.guard.previous?.epoch, best: s.guard.best?.epoch },
    ]),
  };
}

/**
 * Trains `config` uninterrupted, then again stopping after each of `cuts` batches, checkpointing, and resuming
 * into a differently initialised model; asserts the final weights, optimizer slots and counters are bitwise equal.
 * Also asserts another seed changes the weights (the comparison is sensitive).
 */
export async function checkExactResume(config: TrainingConfigInput, cuts = [1, 3, 4, 6]): Promise<void> {
  const model = tinyModel({ seed: 5 });
  const straight = await Trainer.create({ model, train: data, config });
  let expected: Awaited<ReturnType<typeof fingerprint>>;
  try {
    await runAll(straight);
    expected = await fingerprint(straight, model);
  } finally {
    straight.dispose();
    model.dispose();
  }

  // 1 = mid-epoch (and mid-accumulation), 3 = before the short last batch, 4 = epoch boundary, 6 = in epoch 1
  for (const cut of cuts) {
    const m1 = tinyModel({ seed: 5 });
    const t1 = await Trainer.create({ model: m1, train: data, config });
    let bytes: Uint8Array;
    try {
      for (let i = 0; i < cut; i++) await t1.step();
      bytes = await t1.checkpoint();
    } finally {
      t1.dispose();
      m1.dispose();
    }
    // a differently initialised model: everything must come from the checkpoint
    const m2 = tinyModel({ seed: 99 });
    const t2 = await Trainer.resume(bytes, { model: m2, train: data });
    try {
      assert.deepEqual(t2.cursor, { epoch: Math.floor(cut / 4), batch: cut % 4 });
      await runAll(t2);
      const got = await fingerprint(t2, m2);
      assert.ok(sameBits(got.weights, expected.weights), `weights differ after resuming at batch ${cut}`);
      assert.ok(sameBits(got.slots, expected.slots), `optimizer slots differ after resuming at batch ${cut}`);
      assert.equal(got.counters, expected.counters, `counters differ after resuming at batch ${cut}`);
    } finally {
      t2.dispose();
      m2.dispose();
    }
  }

  const m3 = tinyModel({ seed: 5 });
  const t3 = await Trainer.create({ model: m3, train: data, config: { ...config, seed: 12 } });
  try {
    await runAll(t3);
    assert.ok(!sameBits(await flatWeights(m3), expected.weights), 'a different seed should change the weights');
  } finally {
    t3.dispose();
    m3.dispose();
  }
}
