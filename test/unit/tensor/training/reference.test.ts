import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { parseTrainingConfig } from '../../../../tensor/training/config';
import {
  CHECKPOINT_FILE,
  parseReferenceArgs,
  referenceConfig,
  runReference,
} from '../../../../tensor/training/reference';

describe('train:reference arguments', () => {
  it('parses the documented flags with their defaults', () => {
    const o = parseReferenceArgs(['--mode', 'adversarial', '--epochs', '4', '--out', '/tmp/x', '--json']);
    assert.equal(o.mode, 'adversarial');
    assert.equal(o.epochs, 4);
    assert.equal(o.trainSize, 60000);
    assert.equal(o.eps, 0.1);
    assert.equal(o.evalSize, 1000);
    assert.equal(o.batchSize, 128);
    assert.equal(o.json, true);
    assert.equal(o.from, undefined);
    const f = parseReferenceArgs([
      '--mode=standard',
      '--epochs=2',
      '--train-size=2000',
      '--out=o',
      '--from=m',
      '--eps=0.2',
    ]);
    assert.deepEqual([f.mode, f.trainSize, f.from, f.eps, f.json], ['standard', 2000, 'm', 0.2, false]);
  });

  it('refuses bad input with the usage line', () => {
    assert.throws(
      () => parseReferenceArgs(['--epochs', '1', '--out', 'o']),
      /--mode must be standard or adversarial.*\n.*usage/s,
    );
    assert.throws(() => parseReferenceArgs(['--mode', 'standard', '--out', 'o']), /--epochs is required/);
    assert.throws(
      () => parseReferenceArgs(['--mode', 'standard', '--epochs', '1.5', '--out', 'o']),
      /integer ≥ 1, got 1.5/,
    );
    // Without --out the model goes to a git-ignored folder per mode.
    assert.equal(
      parseReferenceArgs(['--mode', 'standard', '--epochs', '1']).out,
      join('.tempered', 'reference', 'standard'),
    );
    assert.throws(
      () => parseReferenceArgs(['--mode', 'standard', '--epochs', '1', '--out', 'o', '--eps', '3']),
      /--eps/,
    );
    assert.throws(
      () => parseReferenceArgs(['--mode', 'standard', '--epochs', '1', '--out', 'o', '--epsilon', '1']),
      /usage/,
    );
  });

  it('builds the recipe: Adam 1e-3, batch 128; adversarial adds PGD-7, step ε/4, linear warm-up over epoch 1', () => {
    const std = parseTrainingConfig(
      referenceConfig({ mode: 'standard', epochs: 2, eps: 0.1, batchSize: 128, seed: 0 }),
    );
    assert.equal(std.optimizer, 'adam');
    assert.equal(std.learningRate, 1e-3);
    assert.equal(std.batchSize, 128);
    assert.equal(std.epsilon, undefined);
    const adv = parseTrainingConfig(
      referenceConfig({ mode: 'adversarial', epochs: 4, eps: 0.1, batchSize: 128, seed: 0 }),
    );
    assert.deepEqual(adv.epsilon, { max: 0.1, kind: 'linear', warmupEpochs: 1 });
    assert.equal(adv.attack.steps, 7);
    assert.equal(adv.attack.stepFraction, 0.25);
    assert.equal(adv.attack.restarts, 1);
    assert.equal(adv.attack.randomStart, true);
  });
});

/** The backend this phase runs on (test/run.ts runs the tensor tests on wasm, then on tensorflow). */
const PHASE_BACKEND = process.env.TEMPERED_BACKEND === 'tensorflow' ? 'tensorflow' : 'wasm';

describe('runReference (tiny)', () => {
  it('trains, saves, checkpoints, evaluates and reports; fine-tunes from the saved model on two threads', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tempered-ref-'));
    try {
      const common = { epochs: 1, trainSize: 64, eps: 0.1, evalSize: 30, batchSize: 32, seed: 0, resume: false };
      const lines: string[] = [];
      const r = await runReference(
        {
          ...common,
          mode: 'standard',
          out,
          backend: PHASE_BACKEND,
          threads: 1,
          dataDir: '/usr/share/datasets/fashion-mnist',
        },
        (l) => lines.push(l),
      );
      assert.equal(r.backend, PHASE_BACKEND);
      assert.deepEqual([r.shards, r.threads], [1, 1]);
      assert.equal(r.evalImages, 30);
      assert.deepEqual(r.attack, { method: 'pgd', norm: 'linf', eps: 0.1, steps: 20, stepSize: 0.025, restarts: 1 });
      for (const v of [r.clean, r.robust]) assert.ok(v >= 0 && v <= 1);
      assert.ok(r.robust <= r.clean, `robust ${r.robust} > clean ${r.clean}`);
      assert.ok(r.seconds > 0);
      assert.deepEqual((await readdir(out)).sort(), [CHECKPOINT_FILE, 'model.json', 'weights.bin'].sort());
      assert.ok(
        lines.some((l) => /^epoch 1\/1: loss/.test(l)),
        lines.join('\n'),
      );

      const tuned = join(out, 'tuned');
      const before = tf.memory().numTensors;
      const r2 = await runReference({
        ...common,
        mode: 'adversarial',
        out: tuned,
        from: out,
        backend: PHASE_BACKEND,
        threads: 2,
        dataDir: '/usr/share/datasets/fashion-mnist',
      });
      assert.equal(r2.evalImages, 30);
      assert.deepEqual([r2.shards, r2.threads], [2, 2], 'two shards on a pool of two threads of the same backend');
      assert.equal(tf.memory().numTensors, before, 'tensors left behind');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
