import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { TrainingConfigInput } from '../../../../tensor/training/config';
import { CheckpointError, TrainingDivergedError } from '../../../../tensor/training/errors';
import { trainLoop } from '../../../../tensor/training/loop';
import { Trainer } from '../../../../tensor/training/trainer';
import type { StepResult } from '../../../../tensor/training/trainer';
import { flatWeights, sameBits, syntheticDataset, tinyModel } from './helpers';
import { checkExactResume, RESUME_CONFIGS } from './resume-check';

before(async () => {
  await tf.setBackend('cpu');
});

const data = syntheticDataset(56); // batches of 16: 16, 16, 16, 8
const base: TrainingConfigInput = { epochs: 2, batchSize: 16, learningRate: 0.01, seed: 11 };

async function runAll(t: Trainer): Promise<StepResult[]> {
  const out: StepResult[] = [];
  while (!t.done) out.push(await t.step());
  return out;
}

describe('Trainer: learning', () => {
  it('one optimizer step reduces the loss on a tiny batch', async () => {
    const tiny = syntheticDataset(16, { seed: 3 });
    const model = tinyModel();
    const t = await Trainer.create({ model, train: tiny, config: { ...base, learningRate: 0.02 } });
    try {
      const [first, second] = await runAll(t);
      assert.equal(first.applied, true);
      assert.ok(second.loss < first.loss - 1e-3, `loss ${first.loss} → ${second.loss} should drop`);
    } finally {
      t.dispose();
      model.dispose();
    }
  });

  it('the adversarial batch has a higher loss than the clean one at the same weights', async () => {
    const losses: number[] = [];
    for (const epsilon of [undefined, { max: 0.15 }]) {
      const model = tinyModel();
      const t = await Trainer.create({ model, train: data, config: { ...base, epsilon } });
      try {
        const r = await t.step();
        assert.equal(r.eps, epsilon ? 0.15 : 0);
        losses.push(r.loss);
      } finally {
        t.dispose();
        model.dispose();
      }
    }
    assert.ok(losses[1] > losses[0] + 0.01, `adversarial loss ${losses[1]} should exceed clean loss ${losses[0]}`);
  });

  it('follows the ε and learning-rate schedules batch by batch', async () => {
    const model = tinyModel();
    const t = await Trainer.create({
      model,
      train: data,
      config: {
        ...base,
        epsilon: { max: 0.1, kind: 'linear', warmupEpochs: 1 },
        lrSchedule: { type: 'step', stepEvery: 1, gamma: 0.5 },
      },
    });
    try {
      const rs = await runAll(t);
      assert.deepEqual(
        rs.map((r) => [r.epoch, r.batch]),
        [0, 1].flatMap((e) => [0, 1, 2, 3].map((b) => [e, b])),
      );
      assert.deepEqual(
        rs.map((r) => +r.eps.toFixed(6)),
        [0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1],
      );
      assert.deepEqual(
        rs.map((r) => r.lr),
        [0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.005],
      );
      assert.deepEqual(
        rs.map((r) => r.examples),
        [16, 16, 16, 8, 16, 16, 16, 8],
      );
      assert.equal(t.epochHistory.length, 2);
      assert.ok(rs[3].epochSummary && rs[7].epochSummary && !rs[2].epochSummary);
      assert.deepEqual(t.cursor, { epoch: 2, batch: 0 });
      await assert.rejects(() => t.step(), /training is done/);
    } finally {
      t.dispose();
      model.dispose();
    }
  });
});

describe('Trainer: exact resume (cpu)', () => {
  for (const [name, config] of RESUME_CONFIGS) {
    it(`bitwise equal to an uninterrupted run: ${name}`, async () => {
      await checkExactResume(config);
    });
  }
});

describe('Trainer: divergence', () => {
  it('a loss above the threshold stops training; the last good state checkpoints and restores', async () => {
    const model = tinyModel();
    const t = await Trainer.create({ model, train: data, config: { ...base, learningRate: 1e6 } });
    let bytes: Uint8Array;
    let good: Float32Array;
    let firstLoss: number;
    try {
      const r0 = await t.step(); // lands the absurd update; its own loss was fine
      assert.ok(r0.loss < 10);
      good = await flatWeights(model);
      const err = await t.step().then(
        () => assert.fail('expected TrainingDivergedError'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof TrainingDivergedError, `got ${err}`);
      firstLoss = err.loss;
      assert.equal(err.epoch, 0);
      assert.equal(err.batch, 1);
      assert.equal(err.lr, 1e6);
      assert.ok(!(err.loss <= 100), `loss ${err.loss}`);
      assert.match(err.message, /epoch 0 batch 1/);
      assert.equal(t.diverged, err);
      await assert.rejects(() => t.step(), TrainingDivergedError);
      assert.deepEqual(t.cursor, { epoch: 0, batch: 1 });
      assert.ok(sameBits(await flatWeights(model), good), 'no update from the diverged step');
      bytes = await t.checkpoint();
    } finally {
      t.dispose();
      model.dispose();
    }
    // the checkpoint restores exactly that state: the same batch diverges again with the same loss
    const m2 = tinyModel({ seed: 42 });
    const t2 = await Trainer.resume(bytes, { model: m2, train: data });
    try {
      assert.deepEqual(t2.cursor, { epoch: 0, batch: 1 });
      assert.ok(sameBits(await flatWeights(m2), good), 'the checkpoint restores the last good weights');
      await assert.rejects(
        () => t2.step(),
        (e: unknown) => e instanceof TrainingDivergedError && e.batch === 1 && Object.is(e.loss, firstLoss),
      );
    } finally {
      t2.dispose();
      m2.dispose();
    }
  });

  it('an update that makes the weights non-finite is rolled back', async () => {
    const model = tinyModel();
    const initial = await flatWeights(model);
    let bytes: Uint8Array;
    // 1e39 overflows float32: Adam's update becomes ±Infinity/NaN
    const t = await Trainer.create({ model, train: data, config: { ...base, learningRate: 1e39 } });
    try {
      await assert.rejects(
        () => t.step(),
        (e: unknown) => e instanceof TrainingDivergedError && e.reason === 'non-finite-weights' && e.batch === 0,
      );
      assert.ok(sameBits(await flatWeights(model), initial), 'weights rolled back to before the step');
      const s = await t.state();
      assert.equal(s.optimizer.iterations, 0);
      assert.equal(s.optimizerSteps, 0);
      assert.ok(
        s.optimizer.slots.every((x) => x.data.every((v) => v === 0)),
        'Adam moments rolled back',
      );
      assert.deepEqual(s.cursor, { epoch: 0, batch: 0 });
      bytes = await t.checkpoint();
    } finally {
      t.dispose();
      model.dispose();
    }
    // continuing under a different config needs allowConfigChange; then a sane rate trains on
    const m2 = tinyModel({ seed: 42 });
    try {
      await assert.rejects(
        () => Trainer.create({ model: m2, train: data, config: { ...base, learningRate: 1e-2 }, state: bytes }),
        (e: unknown) => e instanceof CheckpointError && e.problem === 'config-mismatch',
      );
      const t2 = await Trainer.create({
        model: m2,
        train: data,
        config: { ...base, learningRate: 1e-2 },
        state: bytes,
        allowConfigChange: true,
      });
      try {
        assert.ok(sameBits(await flatWeights(m2), initial), 'the checkpoint holds the rolled-back weights');
        const r = await t2.step();
        assert.ok(r.applied && Number.isFinite(r.loss) && r.lr === 1e-2);
        assert.ok(!sameBits(await flatWeights(m2), initial));
      } finally {
        t2.dispose();
      }
    } finally {
      m2.dispose();
    }
  });
});

describe('Trainer: tensors', () => {
  it('step, checkpoint, resume and dispose leave no tensors behind', async () => {
    const model = tinyModel();
    const baseline = tf.memory().numTensors;
    const config: TrainingConfigInput = {
      ...base,
      epsilon: { max: 0.1 },
      attack: { steps: 2, restarts: 2 },
      cleanFraction: 0.5,
      gradientAccumulation: 3,
      tradesBeta: 1,
    };
    const t = await Trainer.create({ model, train: data, config });
    await t.step();
    const bytes = await t.checkpoint();
    await t.step();
    t.dispose();
    const t2 = await Trainer.resume(bytes, { model, train: data });
    await t2.step();
    await t2.state();
    t2.dispose();
    assert.equal(tf.memory().numTensors, baseline);
    for (const optimizer of ['sgd', 'adam'] as const) {
      const t3 = await Trainer.create({
        model,
        train: data,
        config: { ...base, optimizer, momentum: optimizer === 'sgd' ? 0.9 : 0, epsilon: { max: 0.1 } },
      });
      await t3.step();
      await t3.checkpoint();
      t3.dispose();
      assert.equal(tf.memory().numTensors, baseline, `leak with ${optimizer}`);
    }
    model.dispose();
  });

  it('refuses models and data that do not fit, naming what was expected', async () => {
    const model = tinyModel({ side: 10 });
    try {
      await assert.rejects(() => Trainer.create({ model, train: data, config: base }), /\[10,10,1\].*\[8,8,1\]/);
    } finally {
      model.dispose();
    }
  });

  it('trains a model that ends in a softmax on the scores before it, exactly as its logits twin', async () => {
    const build = (activation: 'softmax' | 'linear') =>
      tf.sequential({
        layers: [
          tf.layers.flatten({ inputShape: [8, 8, 1] }),
          tf.layers.dense({ units: 3, activation, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
        ],
      });
    const soft = build('softmax');
    const plain = build('linear');
    try {
      for (const m of [soft, plain]) {
        const t = await Trainer.create({ model: m, train: data, config: { ...base, epochs: 1 } });
        while (!t.done) await t.step();
        t.dispose();
      }
      const a = await soft.getWeights()[0].data();
      const b = await plain.getWeights()[0].data();
      assert.ok(
        a.every((v, i) => Math.abs(v - b[i]) < 1e-5),
        'same weights as the logits model',
      );
      const x = tf.zeros([2, 8, 8, 1]);
      const sums = await tf.tidy(() => (soft.predict(x) as tf.Tensor2D).sum(1)).data();
      x.dispose();
      assert.ok(
        [...sums].every((v) => Math.abs(v - 1) < 1e-5),
        'the model still outputs probabilities',
      );
    } finally {
      soft.dispose();
      plain.dispose();
    }
  });
});

describe('trainLoop', () => {
  it('checkpoints every N batches and at epoch ends, and stops between batches on abort', async () => {
    const model = tinyModel();
    const t = await Trainer.create({ model, train: data, config: base });
    const saved: string[] = [];
    const controller = new AbortController();
    try {
      const r = await trainLoop(t, {
        signal: controller.signal,
        checkpointEvery: 3,
        onCheckpoint: (bytes, at) => {
          assert.ok(bytes.length > 0);
          saved.push(`${at.epoch}.${at.batch}`);
        },
        onStep: (s) => {
          if (s.epoch === 1 && s.batch === 1) controller.abort();
        },
      });
      assert.deepEqual(r, { stopped: 'aborted', batches: 6 });
      // after batch 3 (0.3), the epoch end (1.0), and on abort (1.2)
      assert.deepEqual(saved, ['0.3', '1.0', '1.2']);
      assert.deepEqual(t.cursor, { epoch: 1, batch: 2 });
      const rest = await trainLoop(t, { maxBatches: 1 });
      assert.deepEqual(rest, { stopped: 'max-batches', batches: 1 });
      assert.deepEqual(await trainLoop(t), { stopped: 'done', batches: 1 });
      assert.equal(t.done, true);
    } finally {
      t.dispose();
      model.dispose();
    }
  });
});

describe('Trainer: extending a finished run', () => {
  it('continues a finished run for more epochs under allowConfigChange, and refuses fewer epochs', async () => {
    const model = tinyModel();
    const t = await Trainer.create({ model, train: data, config: { ...base, epochs: 1 } });
    let bytes: Uint8Array;
    try {
      await runAll(t);
      bytes = await t.checkpoint();
    } finally {
      t.dispose();
    }
    const t2 = await Trainer.create({ model, train: data, config: base, state: bytes, allowConfigChange: true });
    try {
      assert.deepEqual(t2.cursor, { epoch: 1, batch: 0 });
      assert.equal(t2.done, false);
      const rs = await runAll(t2);
      assert.equal(rs.length, 4);
      assert.equal(t2.epochHistory.length, 2);
    } finally {
      t2.dispose();
    }
    const m = tinyModel();
    const t3 = await Trainer.create({ model: m, train: data, config: base });
    try {
      for (let i = 0; i < 5; i++) await t3.step();
      bytes = await t3.checkpoint();
    } finally {
      t3.dispose();
      m.dispose();
    }
    await assert.rejects(
      () =>
        Trainer.create({ model, train: data, config: { ...base, epochs: 1 }, state: bytes, allowConfigChange: true }),
      /past the 1 epochs/,
    );
    model.dispose();
  });
});
