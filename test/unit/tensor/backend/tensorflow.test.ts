import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../tensor/backend';
import { probeBackends } from '../../../../tensor/backend/probe';
import { RELU_GRAD } from '../../../../tensor/backend/relu-grad';

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

  it("takes the ReLU gradient in one TensorFlow op (ReluGrad), equal to tfjs's dy · step(x)", async () => {
    await initBackend('tensorflow', { log: () => {} });
    assert.ok(tf.getKernel(RELU_GRAD, 'tensorflow'), 'RELU_GRAD is registered on tensorflow');
    const before = tf.memory().numTensors;
    const x = tf.tensor2d([
      [-2, -0.5, 0, 0.25],
      [3, -1e-8, 1e-8, 7],
    ]);
    const dy = tf.tensor2d([
      [1, 2, 3, 4],
      [-5, 6, -7, 8],
    ]);
    const profile = await tf.profile(() => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy)));
    const kernels = profile.kernels.map((k) => k.name);
    assert.ok(kernels.includes(RELU_GRAD), `the gradient ran ${kernels.join(', ')}`);
    assert.ok(!kernels.includes('Step'), `tfjs's Step composition still ran: ${kernels.join(', ')}`);
    const got = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy));
    const expected = tf.tidy(() => tf.mul(dy, tf.cast(tf.greater(x, 0), 'float32')));
    assert.deepEqual(Array.from(got.dataSync()), Array.from(expected.dataSync()));
    tf.dispose([got, expected, x, dy]);
    tf.dispose(profile.result as tf.Tensor);
    assert.equal(tf.memory().numTensors, before);
  });
});
