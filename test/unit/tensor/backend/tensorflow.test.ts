import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../tensor/backend';
import { probeBackends } from '../../../../tensor/backend/probe';

// Runs where `npm run setup:tensorflow` has built tfjs-node (CI does); elsewhere it says why it skips.
const native = probeBackends().find((p) => p.name === 'tensorflow')!;

describe('tensorflow backend', { skip: native.available ? false : native.detail }, () => {
  it('starts, and rounds int32 as the identity (TensorFlow 2.21 returns zeros) and floats half to even', async () => {
    const report = await initBackend('tensorflow', { log: () => {} });
    assert.equal(report.name, 'tensorflow');
    assert.equal(tf.getBackend(), 'tensorflow');
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const ints = tf.round(tf.tensor1d([1, -2, 7, 0], 'int32'));
      assert.equal(ints.dtype, 'int32');
      assert.deepEqual(Array.from(ints.dataSync()), [1, -2, 7, 0]);
      assert.deepEqual(Array.from(tf.round(tf.tensor1d([1.5, -2.4, 2.5, -0.5])).dataSync()), [2, -2, 2, -0]);
    });
    assert.equal(tf.memory().numTensors, before);
  });
});
