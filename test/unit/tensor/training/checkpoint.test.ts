import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  CHECKPOINT_FORMAT_VERSION,
  deserializeCheckpoint,
  serializeCheckpoint,
} from '../../../../tensor/training/checkpoint';
import type { TrainingCheckpoint } from '../../../../tensor/training/checkpoint';
import { CheckpointError } from '../../../../tensor/training/errors';
import { Trainer } from '../../../../tensor/training/trainer';
import type { TrainingConfigInput } from '../../../../tensor/training/config';
import { syntheticDataset, tinyModel } from './helpers';

const data = syntheticDataset(40);
const config: TrainingConfigInput = {
  epochs: 1,
  batchSize: 16,
  learningRate: 0.01,
  epsilon: { max: 0.1 },
  attack: { steps: 1 },
  gradientAccumulation: 2,
};
let bytes: Uint8Array;
let state: TrainingCheckpoint;

const problem = (p: string) => (e: unknown) => {
  assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
  assert.equal(e.problem, p, e.message);
  return true;
};

before(async () => {
  await tf.setBackend('cpu');
  const model = tinyModel();
  const t = await Trainer.create({ model, train: data, config });
  try {
    await t.step(); // mid-accumulation: the checkpoint holds gradients too
    state = await t.state();
    bytes = serializeCheckpoint(state);
  } finally {
    t.dispose();
    model.dispose();
  }
});

after(() => {
  assert.equal(tf.memory().numTensors, 0, 'tensors left behind');
});

describe('checkpoint format', () => {
  it('round-trips every part of the state, and re-serialises to the same bytes', () => {
    const back = deserializeCheckpoint(bytes);
    assert.deepEqual(back.cursor, { epoch: 0, batch: 1 });
    assert.equal(back.accumulation.count, 1);
    assert.equal(back.accumulation.grads.length, 4);
    assert.equal(back.optimizer.kind, 'adam');
    assert.equal(back.optimizer.slots.length, 0, 'no optimizer step taken yet');
    assert.deepEqual(back.rngState, state.rngState);
    assert.deepEqual(Array.from(back.order), Array.from(state.order));
    assert.equal(back.weights.length, 4);
    back.weights.forEach((w, i) => {
      assert.deepEqual(w.shape, state.weights[i].shape);
      assert.deepEqual(Array.from(w.data), Array.from(state.weights[i].data));
    });
    assert.deepEqual(serializeCheckpoint(back), bytes);
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true), CHECKPOINT_FORMAT_VERSION);
  });

  it('reads from an unaligned buffer', () => {
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const back = deserializeCheckpoint(shifted.subarray(1));
    assert.deepEqual(Array.from(back.weights[0].data), Array.from(state.weights[0].data));
  });

  it('refuses what is not a checkpoint', () => {
    assert.throws(() => deserializeCheckpoint(new TextEncoder().encode('{"hello":1}')), problem('not-a-checkpoint'));
    assert.throws(() => deserializeCheckpoint(new Uint8Array(0)), problem('not-a-checkpoint'));
  });

  it('refuses truncated bytes, saying how many it expected', () => {
    assert.throws(() => deserializeCheckpoint(bytes.subarray(0, bytes.length - 100)), /truncated: expected \d+ bytes/);
    assert.throws(() => deserializeCheckpoint(bytes.subarray(0, 40)), problem('truncated'));
  });

  it('detects a flipped bit anywhere', () => {
    for (const at of [20, Math.floor(bytes.length / 2), bytes.length - 40]) {
      const bad = bytes.slice();
      bad[at] ^= 0x10;
      assert.throws(() => deserializeCheckpoint(bad), problem('corrupt'), `flip at byte ${at}`);
    }
  });

  it('refuses another format version', () => {
    const bad = bytes.slice();
    new DataView(bad.buffer).setUint32(8, 99, true);
    assert.throws(() => deserializeCheckpoint(bad), /format version 99 is not supported/);
  });

  it('refuses a checkpoint written under another config when asked to check', () => {
    assert.throws(
      () => deserializeCheckpoint(bytes, { expectConfigHash: '0123456789abcdef' }),
      problem('config-mismatch'),
    );
    assert.doesNotThrow(() => deserializeCheckpoint(bytes, { expectConfigHash: state.configHash }));
  });

  it('resume refuses another model, other data or another config, naming the difference', async () => {
    const other = tinyModel({ filters: 5 });
    try {
      await assert.rejects(
        () => Trainer.resume(bytes, { model: other, train: data }),
        (e: unknown) => problem('model-mismatch')(e) && /shape \[3,3,1,5\] in the model/.test((e as Error).message),
      );
    } finally {
      other.dispose();
    }
    const model = tinyModel();
    try {
      await assert.rejects(
        () => Trainer.resume(bytes, { model, train: syntheticDataset(48) }),
        (e: unknown) => problem('data-mismatch')(e) && /count=40.*count=48/.test((e as Error).message),
      );
      await assert.rejects(
        () => Trainer.resume(bytes, { model, train: data, config: { ...config, learningRate: 0.5 } }),
        problem('config-mismatch'),
      );
      await assert.rejects(
        () =>
          Trainer.resume(bytes, {
            model,
            train: data,
            config: { ...config, optimizer: 'sgd' },
            allowConfigChange: true,
          }),
        (e: unknown) => problem('config-mismatch')(e) && /adam optimizer state/.test((e as Error).message),
      );
    } finally {
      model.dispose();
    }
  });
});
