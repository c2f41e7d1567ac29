import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { attack, fgsm, pgdL2, pgdLinf } from '../../../../tensor/attacks';
import { buildReferenceCnn, buildSmallResNet } from '../../../../tensor/models';
import { accuracy, meanLoss, setupBackend, tensors, trainedFixture } from './fixture';

let model: tf.LayersModel;
let x: tf.Tensor4D;
let y: tf.Tensor1D;
let cleanAcc: number;
let cleanLoss: number;

/** Runs `f`, disposes its result, and asserts that no tensor survived. Returns what `read` took from the result. */
function noLeak<T>(f: () => tf.Tensor4D, read: (adv: tf.Tensor4D) => T): T {
  const before = tf.memory().numTensors;
  const adv = f();
  try {
    return read(adv);
  } finally {
    adv.dispose();
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  }
}

function linfDistance(adv: tf.Tensor4D, clean: tf.Tensor4D): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(adv, clean))).dataSync()[0]);
}

function l2Distances(adv: tf.Tensor4D, clean: tf.Tensor4D): Float32Array {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.sub(adv, clean)), [1, 2, 3])).dataSync() as Float32Array);
}

function range(adv: tf.Tensor4D): [number, number] {
  return tf.tidy(() => [tf.min(adv).dataSync()[0], tf.max(adv).dataSync()[0]]);
}

/** Per example: does the model misclassify it? */
function fooled(adv: tf.Tensor4D): boolean[] {
  return tf.tidy(() => {
    const pred = tf.argMax(model.apply(adv, { training: false }) as tf.Tensor2D, 1);
    return Array.from(tf.notEqual(pred, y).dataSync(), (v) => v === 1);
  });
}

before(async () => {
  await setupBackend();
  const fixture = await trainedFixture();
  model = fixture.model;
  ({ x, y } = tensors(fixture.testSet, 100));
  cleanAcc = accuracy(model, x, y);
  cleanLoss = meanLoss(model, x, y);
  assert.ok(cleanAcc > 0.6, `fixture model should be trained, clean accuracy ${cleanAcc}`);
});

after(() => {
  x.dispose();
  y.dispose();
  model.dispose();
});

describe('PGD L∞', () => {
  it('stays in the ε-ball and [0,1], raises the loss, and breaks the model at ε=0.1', () => {
    const eps = 0.1;
    noLeak(
      () => pgdLinf(model, x, y, { eps, steps: 10, stepSize: 0.025, seed: 1 }),
      (adv) => {
        assert.ok(linfDistance(adv, x) <= eps + 1e-6, `|adv − x|∞ = ${linfDistance(adv, x)} > ε`);
        const [lo, hi] = range(adv);
        assert.ok(lo >= 0 && hi <= 1, `adv outside [0,1]: [${lo}, ${hi}]`);
        const advLoss = meanLoss(model, adv, y);
        assert.ok(advLoss > cleanLoss + 1, `adversarial loss ${advLoss} should exceed clean loss ${cleanLoss}`);
        const robust = accuracy(model, adv, y);
        assert.ok(robust < cleanAcc / 3, `accuracy under PGD ${robust} should be well below clean ${cleanAcc}`);
      },
    );
  });

  it('is at least as strong as FGSM at the same ε', () => {
    const eps = 0.03;
    const fgsmAcc = noLeak(
      () => fgsm(model, x, y, { eps }),
      (adv) => {
        assert.ok(linfDistance(adv, x) <= eps + 1e-6);
        return accuracy(model, adv, y);
      },
    );
    const pgdAcc = noLeak(
      () => pgdLinf(model, x, y, { eps, steps: 10, stepSize: eps / 4, seed: 3 }),
      (adv) => accuracy(model, adv, y),
    );
    assert.ok(fgsmAcc < cleanAcc, `FGSM should hurt: ${fgsmAcc} vs clean ${cleanAcc}`);
    assert.ok(pgdAcc <= fgsmAcc, `PGD-10 accuracy ${pgdAcc} should not exceed FGSM's ${fgsmAcc}`);
  });

  it('with restarts keeps the first successful restart and never does worse than one restart', () => {
    const options = { eps: 0.02, steps: 3, stepSize: 0.01, seed: 11 };
    const one = pgdLinf(model, x, y, options);
    const before = tf.memory().numTensors;
    const three = pgdLinf(model, x, y, { ...options, restarts: 3 });
    assert.equal(tf.memory().numTensors, before + 1, 'restarts leaked tensors');
    try {
      assert.ok(linfDistance(three, x) <= options.eps + 1e-6);
      const f1 = fooled(one);
      const f3 = fooled(three);
      assert.ok(
        f1.some((f) => f) && f1.some((f) => !f),
        'ε chosen so that one restart fools some but not all examples',
      );
      const a = one.arraySync();
      const b = three.arraySync();
      for (let i = 0; i < f1.length; i++) {
        if (!f1[i]) continue;
        assert.ok(f3[i], `example ${i} fooled by restart 1 but not with 3 restarts`);
        assert.deepEqual(b[i], a[i], `example ${i}: the first successful restart's image must be kept`);
      }
      assert.ok(f3.filter((f) => f).length >= f1.filter((f) => f).length);
    } finally {
      one.dispose();
      three.dispose();
    }
  });

  it('repeats exactly with the same seed and differs with another', () => {
    const options = { eps: 0.05, steps: 2, stepSize: 0.01 };
    const a = pgdLinf(model, x, y, { ...options, seed: 5 });
    const b = pgdLinf(model, x, y, { ...options, seed: 5 });
    const c = pgdLinf(model, x, y, { ...options, seed: 6 });
    try {
      assert.deepEqual(a.dataSync(), b.dataSync());
      assert.notDeepEqual(a.dataSync(), c.dataSync());
    } finally {
      tf.dispose([a, b, c]);
    }
  });

  it('random start lies uniformly inside the ε-box (0 steps)', () => {
    const eps = 0.1;
    noLeak(
      () => pgdLinf(model, x, y, { eps, steps: 0, seed: 2 }),
      (adv) => {
        assert.ok(linfDistance(adv, x) <= eps + 1e-6);
        const [lo, hi] = range(adv);
        assert.ok(lo >= 0 && hi <= 1);
        // Interior pixels (clean value in [ε, 1−ε]) move by U(−ε, ε): mean |δ| ≈ ε/2.
        const meanAbs = tf.tidy(() => {
          const inside = tf.logicalAnd(tf.greaterEqual(x, eps), tf.lessEqual(x, 1 - eps)).toFloat();
          return tf
            .sum(tf.mul(tf.abs(tf.sub(adv, x)), inside))
            .div(tf.sum(inside))
            .dataSync()[0];
        });
        assert.ok(Math.abs(meanAbs - eps / 2) < eps * 0.05, `mean |δ| ${meanAbs}, expected ≈ ${eps / 2}`);
      },
    );
  });

  it("uses the model's own predictions when no labels are given", () => {
    const options = { eps: 0.05, steps: 3, stepSize: 0.02, seed: 4 };
    const pred = tf.tidy(() => tf.argMax(model.apply(x) as tf.Tensor2D, 1).toInt() as tf.Tensor1D);
    const withPred = pgdLinf(model, x, pred, options);
    try {
      noLeak(
        () => pgdLinf(model, x, undefined, options),
        (adv) => assert.deepEqual(adv.dataSync(), withPred.dataSync()),
      );
      noLeak(
        () => pgdLinf(model, x, undefined, { ...options, restarts: 2 }),
        (adv) => assert.ok(linfDistance(adv, x) <= options.eps + 1e-6),
      );
    } finally {
      tf.dispose([pred, withPred]);
    }
  });
});

describe('PGD L2', () => {
  it('stays in the L2 ball and [0,1] and raises the loss', () => {
    const eps = 1.5;
    noLeak(
      () => pgdL2(model, x, y, { eps, steps: 10, stepSize: 0.4, restarts: 2, seed: 8 }),
      (adv) => {
        const d = l2Distances(adv, x);
        for (let i = 0; i < d.length; i++) assert.ok(d[i] <= eps * (1 + 1e-4), `‖δ‖₂ of example ${i} = ${d[i]} > ε`);
        const [lo, hi] = range(adv);
        assert.ok(lo >= 0 && hi <= 1, `adv outside [0,1]: [${lo}, ${hi}]`);
        assert.ok(meanLoss(model, adv, y) > cleanLoss + 0.5);
        assert.ok(accuracy(model, adv, y) < cleanAcc / 2);
      },
    );
  });

  it('random start lies in the L2 ball, near its surface in high dimension', () => {
    const eps = 2;
    noLeak(
      () => pgdL2(model, x, y, { eps, steps: 0, seed: 9 }),
      (adv) => {
        const d = l2Distances(adv, x);
        for (const v of d) assert.ok(v <= eps * (1 + 1e-4) && v > 0.5 * eps, `‖δ‖₂ = ${v}`);
      },
    );
  });

  it('FGSM under L2 takes one normalised step of length ε', () => {
    const eps = 1;
    noLeak(
      () => fgsm(model, x, y, { norm: 'l2', eps }),
      (adv) => {
        for (const v of l2Distances(adv, x)) assert.ok(v <= eps * (1 + 1e-4));
        assert.ok(meanLoss(model, adv, y) > cleanLoss);
      },
    );
  });
});

describe('attack front door', () => {
  it('dispatches on method and norm', () => {
    const a = attack(model, x, y, { method: 'pgd', norm: 'linf', eps: 0.05, steps: 2, stepSize: 0.02, seed: 1 });
    const b = pgdLinf(model, x, y, { eps: 0.05, steps: 2, stepSize: 0.02, seed: 1 });
    const c = attack(model, x, y, { method: 'fgsm', norm: 'linf', eps: 0.05 });
    const d = fgsm(model, x, y, { eps: 0.05 });
    try {
      assert.deepEqual(a.dataSync(), b.dataSync());
      assert.deepEqual(c.dataSync(), d.dataSync());
    } finally {
      tf.dispose([a, b, c, d]);
    }
  });

  it('rejects bad input with the shapes and values involved', () => {
    const before = tf.memory().numTensors;
    const flat = tf.zeros([4, 28, 28]) as unknown as tf.Tensor4D;
    const shortY = tf.zeros([3], 'int32') as tf.Tensor1D;
    const floatY = tf.zeros([100], 'float32') as tf.Tensor1D;
    try {
      assert.throws(
        () => pgdLinf(model, flat, undefined, { eps: 0.1 }),
        /\[batch,height,width,channels\], got \[4,28,28\]/,
      );
      assert.throws(() => pgdLinf(model, x, shortY, { eps: 0.1 }), /labels of shape \[100\] for 100 images, got \[3\]/);
      assert.throws(() => pgdLinf(model, x, floatY, { eps: 0.1 }), /int32/);
      assert.throws(() => pgdLinf(model, x, y, { eps: -1 }), /eps must be a finite number ≥ 0, got -1/);
      assert.throws(() => pgdLinf(model, x, y, { eps: 0.1, restarts: 0 }), /restarts must be an integer ≥ 1, got 0/);
      assert.throws(() => pgdLinf(model, x, y, { eps: 0.1, steps: 1.5 }), /steps must be an integer ≥ 0, got 1.5/);
    } finally {
      tf.dispose([flat, shortY, floatY]);
    }
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('gradients through convolutional models', () => {
  it('reference CNN: bounds hold and the loss rises', () => {
    const cnn = buildReferenceCnn({ seed: 3 });
    const xs = tf.slice(x, 0, 8);
    const ys = tf.slice(y, 0, 8);
    try {
      noLeak(
        () => pgdLinf(cnn, xs, ys, { eps: 0.1, steps: 3, stepSize: 0.05, seed: 1 }),
        (adv) => {
          assert.ok(linfDistance(adv, xs) <= 0.1 + 1e-6);
          assert.ok(meanLoss(cnn, adv, ys) > meanLoss(cnn, xs, ys), 'gradient must flow through conv layers');
        },
      );
    } finally {
      tf.dispose([xs, ys]);
      cnn.dispose();
    }
  });

  it('small ResNet: bounds hold and the loss rises', () => {
    const net = buildSmallResNet({ inputShape: [16, 16, 3], numClasses: 10, widths: [4, 8], seed: 2 });
    const xs = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const ys = tf.tensor1d([0, 1, 2, 3], 'int32');
    try {
      noLeak(
        () => pgdL2(net, xs, ys, { eps: 1, steps: 3, stepSize: 0.5, seed: 1 }),
        (adv) => {
          for (const v of l2Distances(adv, xs)) assert.ok(v <= 1 + 1e-4);
          assert.ok(meanLoss(net, adv, ys) > meanLoss(net, xs, ys), 'gradient must flow through residual blocks');
        },
      );
    } finally {
      tf.dispose([xs, ys]);
      net.dispose();
    }
  });
});
