import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SuiteAttackContext } from '../../../../tensor/attacks/contract';
import type { Norm } from '../../../../tensor/attacks/options';
import { pseudoGaussian, resolveSquare, squareAttack, squareP } from '../../../../tensor/attacks/square';
import { logitsFunction } from '../../../../tensor/models/logits';
import type { LogitsFn } from '../../../../tensor/models/logits';
import { accuracy, setupBackend, tensors, trainedFixture } from './fixture';

let model: tf.LayersModel;
let x: tf.Tensor4D;
let y: tf.Tensor1D;
let logits: LogitsFn;
let cleanAcc: number;

function context(norm: Norm, eps: number, seed = 1, fn: LogitsFn = logits): SuiteAttackContext {
  return { logits: fn, x, y, norm, eps, numClasses: 10, seed };
}

/** Runs the attack, hands its result to `read`, disposes it, and asserts that no tensor survived. */
async function noLeak<T>(run: () => Promise<tf.Tensor4D>, read: (adv: tf.Tensor4D) => T): Promise<T> {
  const before = tf.memory().numTensors;
  const adv = await run();
  try {
    return read(adv);
  } finally {
    adv.dispose();
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  }
}

function assertInBall(adv: tf.Tensor4D, clean: tf.Tensor4D, norm: Norm, eps: number): void {
  const dist = tf.tidy(() => {
    const diff = tf.sub(adv, clean);
    return norm === 'linf' ? tf.max(tf.abs(diff), [1, 2, 3]) : tf.sqrt(tf.sum(tf.square(diff), [1, 2, 3]));
  });
  const worst = Math.max(...dist.dataSync());
  dist.dispose();
  assert.ok(worst <= eps + 1e-6, `‖adv − x‖ = ${worst} > ε = ${eps} (${norm})`);
  const [lo, hi] = tf.tidy(() => [tf.min(adv).dataSync()[0], tf.max(adv).dataSync()[0]]);
  assert.ok(lo >= 0 && hi <= 1, `adv outside [0,1]: [${lo}, ${hi}]`);
}

function accuracyOf(fn: LogitsFn, images: tf.Tensor4D): number {
  return tf.tidy(() => tf.mean(tf.equal(tf.argMax(fn(images), 1), y).toFloat()).dataSync()[0]);
}

before(async () => {
  await setupBackend();
  const fixture = await trainedFixture();
  model = fixture.model;
  ({ x, y } = tensors(fixture.testSet, 60));
  logits = logitsFunction(model);
  cleanAcc = accuracy(model, x, y);
  assert.ok(cleanAcc > 0.6, `fixture model should be trained, clean accuracy ${cleanAcc}`);
});

after(() => {
  x.dispose();
  y.dispose();
  model.dispose();
});

describe('Square options and schedule', () => {
  it('rejects bad options naming the field', () => {
    assert.throws(() => squareAttack({ queries: 0 }), /square queries must be an integer ≥ 1, got 0/);
    assert.throws(() => squareAttack({ pInit: 1.5 }), /square pInit must be a number in \(0, 1\], got 1.5/);
    assert.throws(() => squareAttack({ restarts: 0.5 }), /square restarts/);
    assert.deepEqual(resolveSquare(), { queries: 5000, pInit: 0.8, restarts: 1 });
  });

  it("halves p after the reference's query marks, rescaled to the budget", () => {
    const at10k = [0, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000, 2001, 4000, 4001, 6000, 6001, 8000, 8001];
    const halvings = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9];
    assert.deepEqual(
      at10k.map((it) => squareP(it, 10000, 0.8)),
      halvings.map((k) => 0.8 / 2 ** k),
    );
    // 5000 queries: iteration 5 is mark 10 of a 10 000-query run, iteration 6 is past it.
    assert.equal(squareP(5, 5000, 0.8), 0.8);
    assert.equal(squareP(6, 5000, 0.8), 0.4);
    assert.equal(squareP(4999, 5000, 0.8), 0.8 / 512);
  });

  it('builds unit-norm pseudo-Gaussian windows with opposite halves', () => {
    for (const s of [3, 5, 6]) {
      const p = pseudoGaussian(s, false);
      assert.ok(Math.abs(Math.hypot(...p) - 1) < 1e-12);
      assert.ok(p[0] > 0 && p[s * s - 1] < 0, 'top half positive, bottom half negative');
      const t = pseudoGaussian(s, true);
      assert.equal(t[1 * s], p[1]);
    }
  });
});

for (const [norm, eps] of [
  ['linf', 0.1],
  ['l2', 2],
] as const) {
  describe(`Square ${norm}`, () => {
    it(`stays in the ε-ball and [0,1] and breaks the trained model at ε=${eps}`, async () => {
      await noLeak(
        () => squareAttack({ queries: 300 })(context(norm, eps)),
        (adv) => {
          assertInBall(adv, x, norm, eps);
          const robust = accuracy(model, adv, y);
          assert.ok(robust < cleanAcc - 0.3, `accuracy under Square ${robust} should be well below clean ${cleanAcc}`);
        },
      );
    });

    it('is deterministic under a fixed seed and varies with it', async () => {
      const run = (seed: number) =>
        noLeak(
          () => squareAttack({ queries: 40 })(context(norm, eps, seed)),
          (adv) => adv.dataSync().slice(),
        );
      const [a, b, c] = [await run(3), await run(3), await run(4)];
      assert.deepEqual(a, b);
      assert.notDeepEqual(a, c);
    });
  });
}

describe('Square without gradients', () => {
  // The trained model's logits rounded to 1/100: the decision still moves with the input, the gradient is zero.
  const rounded: LogitsFn = (images) => tf.tidy(() => tf.div(tf.round(tf.mul(logits(images), 100)), 100));

  it('breaks a model whose gradients are zero everywhere', async () => {
    const grad = tf.tidy(() => {
      const g = tf.grad((images: tf.Tensor) => tf.sum(tf.mul(rounded(images as tf.Tensor4D), tf.oneHot(y, 10))))(x);
      return tf.max(tf.abs(g)).dataSync()[0];
    });
    assert.equal(grad, 0, 'the rounded model should have zero gradients');
    const clean = accuracyOf(rounded, x);
    for (const [norm, eps] of [
      ['linf', 0.1],
      ['l2', 2],
    ] as const) {
      await noLeak(
        () => squareAttack({ queries: 300 })(context(norm, eps, 1, rounded)),
        (adv) => {
          assertInBall(adv, x, norm, eps);
          const robust = accuracyOf(rounded, adv);
          assert.ok(robust < clean - 0.3, `${norm}: accuracy under Square ${robust} vs clean ${clean}`);
        },
      );
    }
  });
});

describe('Square query budget', () => {
  it('stops querying an image once it is misclassified', async () => {
    // Two images: the first carries a label the model does not predict (broken from the first query on), the
    // second is out of reach at this tiny ε. Expected forward rows: 2 at the start, then 1 per iteration.
    const pred = tf.tidy(() => tf.argMax(logits(x.slice(0, 2)), 1).dataSync());
    const xs = x.slice(0, 2) as tf.Tensor4D;
    const ys = tf.tensor1d([(pred[0] + 1) % 10, pred[1]], 'int32');
    let rows = 0;
    const counting: LogitsFn = (images) => {
      rows += images.shape[0];
      return logits(images);
    };
    const queries = 25;
    try {
      await noLeak(
        () =>
          squareAttack({ queries })({
            logits: counting,
            x: xs,
            y: ys,
            norm: 'linf',
            eps: 1e-4,
            numClasses: 10,
            seed: 0,
          }),
        (adv) => assertInBall(adv, xs, 'linf', 1e-4),
      );
      assert.equal(rows, 2 + (queries - 1));
      // A second restart runs on the unbroken image only.
      rows = 0;
      await noLeak(
        () =>
          squareAttack({ queries, restarts: 2 })({
            logits: counting,
            x: xs,
            y: ys,
            norm: 'linf',
            eps: 1e-4,
            numClasses: 10,
            seed: 0,
          }),
        (adv) => assertInBall(adv, xs, 'linf', 1e-4),
      );
      assert.equal(rows, 2 + (queries - 1) + queries);
      // Both robust: every image is queried on every iteration.
      rows = 0;
      const ysRobust = tf.tensor1d([pred[0], pred[1]], 'int32');
      await noLeak(
        () =>
          squareAttack({ queries })({
            logits: counting,
            x: xs,
            y: ysRobust,
            norm: 'l2',
            eps: 1e-3,
            numClasses: 10,
            seed: 0,
          }),
        (adv) => assertInBall(adv, xs, 'l2', 1e-3),
      );
      ysRobust.dispose();
      assert.equal(rows, 2 * queries);
    } finally {
      xs.dispose();
      ys.dispose();
    }
  });

  it('rejects with the abort reason when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('shard cancelled'));
    const before = tf.memory().numTensors;
    await assert.rejects(
      squareAttack({ queries: 10 })({ ...context('linf', 0.1), signal: controller.signal }),
      /shard cancelled/,
    );
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  });
});
