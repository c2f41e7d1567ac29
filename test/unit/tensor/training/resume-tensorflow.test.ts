import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { checkExactResume, RESUME_CONFIGS } from './resume-check';

// The resume contract on tensorflow (TensorFlow 2.21's CPU kernels, all intra-op threads): bitwise, as on wasm.
// It runs in test/run.ts's tensorflow phase, whose preload has started the backend before this file loads.
const running = tf.getBackend();

describe(
  'Trainer: exact resume (tensorflow)',
  {
    skip:
      running === 'tensorflow' ? false : 'runs in the tensorflow phase of test/run.ts (its preload starts tensorflow)',
  },
  () => {
    for (const [name, config] of RESUME_CONFIGS) {
      it(`bitwise equal to an uninterrupted run: ${name}`, async () => {
        const baseline = tf.memory().numTensors;
        await checkExactResume(config);
        assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
      });
    }
  },
);
