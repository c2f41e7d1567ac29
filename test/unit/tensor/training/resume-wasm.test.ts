import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../tensor/backend';
import { checkExactResume, RESUME_CONFIGS } from './resume-check';

before(async () => {
  await initBackend('wasm', { log: () => {} });
});

describe('Trainer: exact resume (wasm)', () => {
  it('runs on wasm', () => {
    assert.equal(tf.getBackend(), 'wasm');
  });
  for (const [name, config] of RESUME_CONFIGS) {
    it(`bitwise equal to an uninterrupted run: ${name}`, async () => {
      const baseline = tf.memory().numTensors;
      await checkExactResume(config);
      assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
    });
  }
});
