import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  accuracyOf,
  blackBoxFlag,
  epsMonotoneFlag,
  moreIterationsFlag,
  sanityPanel,
  singleStepFlag,
} from '../../../../tensor/eval';
import type { SanityFlag, SanityFlagName, SuiteResult } from '../../../../tensor/eval';
import { setupBackend, trainedFixture } from '../attacks/fixture';
import type { Images } from '../attacks/fixture';

/** Rounds its input to a few grey levels: a forward pass that works and a gradient that is zero everywhere. */
class Quantise extends tf.layers.Layer {
  static className = 'TestQuantise';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.div(tf.round(tf.mul(x, 2)), 2));
  }
}

/** Adds fresh noise on every call, also at inference: a randomised defence. */
class Noise extends tf.layers.Layer {
  static className = 'TestNoise';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.add(x, tf.randomNormal(x.shape, 0, 2)));
  }
}

let healthy: tf.LayersModel;
let data: Images;
const extra: tf.LayersModel[] = [];

/** The trained MLP's layers with `before` in front of them and `after` behind (weights copied). */
function variant(o: { before?: tf.layers.Layer; softmax?: boolean; after?: tf.layers.Layer }): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape: [28, 28, 1] }));
  if (o.before) m.add(o.before);
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 32, activation: 'relu' }));
  m.add(tf.layers.dense({ units: 10, activation: o.softmax ? 'softmax' : 'linear' }));
  if (o.softmax) m.add(tf.layers.reshape({ targetShape: [10] }));
  if (o.after) m.add(o.after);
  const src = healthy.layers.filter((l) => l.getWeights().length > 0);
  const dst = m.layers.filter((l) => l.getWeights().length > 0);
  dst.forEach((l, i) => l.setWeights(src[i].getWeights()));
  extra.push(m);
  return m;
}

async function panel(model: tf.LayersModel): Promise<Map<SanityFlagName, SanityFlag>> {
  const before = tf.memory().numTensors;
  const flags = await sanityPanel(model, data, { norm: 'linf', eps: 0.05, count: 48, iterations: 10, seed: 1 });
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  return new Map(flags.map((f) => [f.name, f]));
}

const fired = (m: Map<SanityFlagName, SanityFlag>) => [...m.values()].filter((f) => f.fired).map((f) => f.name);

before(async () => {
  await setupBackend();
  const fixture = await trainedFixture();
  healthy = fixture.model;
  data = fixture.testSet;
});

after(() => {
  healthy.dispose();
  for (const m of extra) m.dispose();
});

describe('sanity panel on models', () => {
  it('stays quiet on a healthy model and reports its numbers', async () => {
    const flags = await panel(healthy);
    assert.deepEqual(fired(flags), []);
    assert.equal(flags.size, 8);
    assert.equal(flags.get('large-eps')!.numbers.accuracy, 0);
    assert.equal(flags.get('zero-gradients')!.numbers.share, 0);
    assert.equal(flags.get('black-box')!.evaluated, false);
  });

  it('fires zero-gradients on a model whose gradient is zero everywhere', async () => {
    const flags = await panel(variant({ before: new Quantise({}) }));
    assert.ok(flags.get('zero-gradients')!.fired);
    assert.equal(flags.get('zero-gradients')!.numbers.share, 1);
    // A gradient attack cannot move it: even at ε = 1 some images stay correct.
    assert.ok(flags.get('large-eps')!.fired);
  });

  it('fires softmax-output on a model that returns probabilities the attacks cannot strip', async () => {
    const flags = await panel(variant({ softmax: true }));
    assert.deepEqual(fired(flags), ['softmax-output']);
  });

  it('fires non-deterministic on a model with noise at inference', async () => {
    const flags = await panel(variant({ after: new Noise({}) }));
    assert.ok(flags.get('non-deterministic')!.fired);
    assert.ok(!flags.get('zero-gradients')!.fired && !flags.get('softmax-output')!.fired);
  });
});

describe('sanity flags from numbers', () => {
  it('eps-monotone fires when accuracy rises with ε beyond the noise, not within it', () => {
    const n = 200;
    const curve = (c: number[]) => c.map((correct, i) => ({ eps: [0, 0.05, 0.1, 0.15, 0.2][i], correct, total: n }));
    assert.equal(epsMonotoneFlag(curve([180, 120, 80, 40, 0])).fired, false);
    assert.equal(epsMonotoneFlag(curve([180, 120, 124, 40, 0])).fired, false);
    const f = epsMonotoneFlag(curve([180, 120, 80, 140, 0]));
    assert.equal(f.fired, true);
    assert.equal(f.numbers.atEps, 0.15);
  });

  it('more-iterations fires when the stronger run is lower beyond the noise', () => {
    assert.equal(moreIterationsFlag(700, 690, 1000).fired, false);
    assert.equal(moreIterationsFlag(700, 600, 1000).fired, true);
  });

  it('single-step fires when the single-step attack broke points the iterative one did not', () => {
    const n = 100;
    const iterative = Array.from({ length: n }, (_, i) => i < 50);
    assert.equal(singleStepFlag(iterative, iterative).fired, false);
    const fgsm = iterative.map((r, i) => r && i >= 5);
    const f = singleStepFlag(fgsm, iterative);
    assert.equal(f.fired, true);
    assert.equal(f.numbers.brokenOnlyBySingleStep, 5);
  });

  it('black-box fires when Square lands below the white-box figure beyond the interval', () => {
    const result = (afterWhiteBox: number, afterSquare: number): SuiteResult => ({
      count: 1000,
      attacks: ['apgd-ce', 'apgd-t', 'square'],
      clean: accuracyOf(800, 1000),
      perAttack: [
        { name: 'apgd-ce', broke: 100, after: accuracyOf(700, 1000) },
        { name: 'apgd-t', broke: 700 - afterWhiteBox, after: accuracyOf(afterWhiteBox, 1000) },
        { name: 'square', broke: afterWhiteBox - afterSquare, after: accuracyOf(afterSquare, 1000) },
      ],
      worstCase: accuracyOf(afterSquare, 1000),
      perClass: [],
      brokenBy: [],
      labels: [],
      seconds: 0,
      backends: ['cpu'],
    });
    assert.equal(blackBoxFlag(result(670, 667)).fired, false);
    const f = blackBoxFlag(result(670, 600));
    assert.equal(f.fired, true);
    assert.equal(f.numbers.broke, 70);
  });
});
