import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SuiteAttackContext } from '../../../../tensor/attacks/contract';
import { fabTargeted, projectOnHyperplane, resolveFab } from '../../../../tensor/attacks/fab';
import type { Norm } from '../../../../tensor/attacks/options';
import { logitsFunction } from '../../../../tensor/models/logits';
import type { LogitsFn } from '../../../../tensor/models/logits';
import { Rng } from '../../../../tensor/random';
import { accuracy, setupBackend, tensors, trainedFixture } from './fixture';

let model: tf.LayersModel;
let x: tf.Tensor4D;
let y: tf.Tensor1D;
let logits: LogitsFn;
let cleanAcc: number;

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

function distances(adv: tf.Tensor4D, clean: tf.Tensor4D, norm: Norm): Float32Array {
  return tf.tidy(() => {
    const diff = tf.sub(adv, clean);
    const dist = norm === 'linf' ? tf.max(tf.abs(diff), [1, 2, 3]) : tf.sqrt(tf.sum(tf.square(diff), [1, 2, 3]));
    return dist.dataSync() as Float32Array;
  });
}

function assertInBall(adv: tf.Tensor4D, clean: tf.Tensor4D, norm: Norm, eps: number): void {
  const worst = Math.max(...distances(adv, clean, norm));
  assert.ok(worst <= eps + 1e-6, `‖adv − x‖ = ${worst} > ε = ${eps} (${norm})`);
  const [lo, hi] = tf.tidy(() => [tf.min(adv).dataSync()[0], tf.max(adv).dataSync()[0]]);
  assert.ok(lo >= 0 && hi <= 1, `adv outside [0,1]: [${lo}, ${hi}]`);
}

before(async () => {
  await setupBackend();
  const fixture = await trainedFixture();
  model = fixture.model;
  ({ x, y } = tensors(fixture.testSet, 50));
  logits = logitsFunction(model);
  cleanAcc = accuracy(model, x, y);
  assert.ok(cleanAcc > 0.6, `fixture model should be trained, clean accuracy ${cleanAcc}`);
});

after(() => {
  x.dispose();
  y.dispose();
  model.dispose();
});

describe('FAB options', () => {
  it('rejects bad options naming the field', () => {
    assert.throws(() => fabTargeted({ iterations: 0 }), /fab iterations must be an integer ≥ 1, got 0/);
    assert.throws(() => fabTargeted({ targets: 1.5 }), /fab targets must be an integer ≥ 1, got 1.5/);
    assert.throws(() => fabTargeted({ restarts: -1 }), /fab restarts/);
    assert.deepEqual(resolveFab(), { iterations: 100, targets: 9, restarts: 1 });
  });
});

/** Reference solution by bisection on the multiplier: the smallest step onto w·(p + d) = b inside [0,1]. */
function bruteProjection(p: Float32Array, w: Float32Array, b: number, norm: Norm): Float64Array {
  const c = b - p.reduce((acc, v, i) => acc + v * w[i], 0);
  const step = (lambda: number) =>
    Float64Array.from(p, (v, i) => {
      const s = Math.sign(c) * Math.sign(w[i]);
      const room = s > 0 ? 1 - v : s < 0 ? v : 0;
      return s * Math.min(norm === 'linf' ? lambda : lambda * Math.abs(w[i]), room);
    });
  const progress = (lambda: number) => step(lambda).reduce((acc, v, i) => acc + Math.abs(v * w[i]), 0);
  let lo = 0;
  let hi = 1e6;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (progress(mid) < Math.abs(c)) lo = mid;
    else hi = mid;
  }
  return step(hi);
}

describe('projection onto a hyperplane inside the box', () => {
  for (const norm of ['linf', 'l2'] as const) {
    it(`matches a bisection solution (${norm}), including rows the box cannot bring to the plane`, () => {
      const rng = Rng.fromSeed(5);
      const rows = 6;
      const dim = 12;
      const p = Float32Array.from({ length: rows * dim }, () => rng.next());
      const w = Float32Array.from({ length: rows * dim }, (_, i) => (i % 5 === 0 ? 0 : rng.next() * 2 - 1));
      // Offsets from the plane through p: small, negative, zero, and one out of the box's reach.
      const b = Float32Array.from({ length: rows }, (_, r) => {
        const dot = p.subarray(r * dim, (r + 1) * dim).reduce((acc, v, i) => acc + v * w[r * dim + i], 0);
        return dot + [0.3, -0.5, 0, 1.1, -0.05, 100][r];
      });
      const got = projectOnHyperplane(p, w, b, rows, norm);
      for (let r = 0; r < rows; r++) {
        const want = bruteProjection(
          p.subarray(r * dim, (r + 1) * dim),
          w.subarray(r * dim, (r + 1) * dim),
          b[r],
          norm,
        );
        for (let i = 0; i < dim; i++) {
          assert.ok(
            Math.abs(got[r * dim + i] - want[i]) < 1e-4,
            `row ${r} coordinate ${i}: ${got[r * dim + i]} vs ${want[i]}`,
          );
          const moved = p[r * dim + i] + got[r * dim + i];
          assert.ok(moved >= -1e-6 && moved <= 1 + 1e-6, `row ${r} leaves the box`);
        }
      }
    });
  }
});

describe('FAB-T on a linear model with known minimal distances', () => {
  // 16-pixel images near 0.5, three classes; class 2 is never competitive, so the target (the runner-up) is the
  // other one of classes 0 and 1, and the distance to it is exactly |z_t − z_y| / ‖w_t − w_y‖ (dual norm).
  const rng = Rng.fromSeed(11);
  const dim = 16;
  const weights = Float32Array.from({ length: dim * 3 }, () => rng.next() * 2 - 1);
  const bias = [0, 0, -100];
  const count = 8;
  const images = Float32Array.from({ length: count * dim }, () => 0.5 + 0.1 * (rng.next() * 2 - 1));
  const linear: LogitsFn = (batch) =>
    tf.tidy(() => tf.add(tf.matMul(tf.reshape(batch, [-1, dim]), tf.tensor2d(weights, [dim, 3])), tf.tensor1d(bias)));
  const logit = (i: number, j: number) =>
    bias[j] + images.subarray(i * dim, (i + 1) * dim).reduce((acc, v, q) => acc + v * weights[q * 3 + j], 0);
  const label = Int32Array.from({ length: count }, (_, i) => (logit(i, 0) > logit(i, 1) ? 0 : 1));
  /** Per image: the minimal distance to the target's side, and the largest coordinate change it takes. */
  const minimal = (norm: Norm) =>
    Array.from(label, (yi, i) => {
      const t = 1 - yi;
      let dual = 0;
      let largest = 0;
      for (let q = 0; q < dim; q++) {
        const diff = Math.abs(weights[q * 3 + t] - weights[q * 3 + yi]);
        dual = norm === 'linf' ? dual + diff : dual + diff * diff;
        largest = Math.max(largest, diff);
      }
      const dist = (logit(i, yi) - logit(i, t)) / (norm === 'linf' ? dual : Math.sqrt(dual));
      return { dist, reach: norm === 'linf' ? dist : (dist * largest) / Math.sqrt(dual) };
    });

  for (const norm of ['linf', 'l2'] as const) {
    it(`finds the target within a few percent of the minimal ${norm} distance, and nothing below it`, async () => {
      const dmin = minimal(norm).map((m) => m.dist);
      // The box [0,1] does not bind: every pixel is ≥ 0.4 from its faces, the closest examples move pixels less.
      const reach = Math.max(...minimal(norm).map((m) => m.reach));
      assert.ok(reach < 0.4, `fixture distances too large: a pixel moves by ${reach}`);
      const xs = tf.tensor4d(images, [count, 4, 4, 1]);
      const ys = tf.tensor1d(label, 'int32');
      const context = (eps: number): SuiteAttackContext => ({
        logits: linear,
        x: xs,
        y: ys,
        norm,
        eps,
        numClasses: 3,
        seed: 0,
      });
      try {
        const above = Math.max(...dmin) * 1.2;
        await noLeak(
          () => fabTargeted({ iterations: 30 })(context(above)),
          (adv) => {
            assertInBall(adv, xs, norm, above);
            const dist = distances(adv, xs, norm);
            const pred = tf.tidy(() => tf.argMax(linear(adv), 1).dataSync());
            for (let i = 0; i < count; i++) {
              assert.equal(pred[i], 1 - label[i], `image ${i} should be classified as its target ${1 - label[i]}`);
              assert.ok(
                dist[i] >= dmin[i] * (1 - 1e-4),
                `image ${i}: ${dist[i]} below the minimal distance ${dmin[i]}`,
              );
              assert.ok(dist[i] <= dmin[i] * 1.06, `image ${i}: ${dist[i]} far above the minimal distance ${dmin[i]}`);
            }
          },
        );
        const below = Math.min(...dmin) * 0.95;
        await noLeak(
          () => fabTargeted({ iterations: 30 })(context(below)),
          (adv) => assert.equal(Math.max(...distances(adv, xs, norm)), 0, 'nothing is adversarial below the minimum'),
        );
      } finally {
        xs.dispose();
        ys.dispose();
      }
    });
  }
});

for (const [norm, eps] of [
  ['linf', 0.1],
  ['l2', 1.5],
] as const) {
  describe(`FAB-T ${norm} on the trained model`, () => {
    const context = (seed = 1): SuiteAttackContext => ({ logits, x, y, norm, eps, numClasses: 10, seed });

    it(`stays in the ε-ball and [0,1] and breaks the model at ε=${eps}`, async () => {
      await noLeak(
        () => fabTargeted({ iterations: 20, targets: 3 })(context()),
        (adv) => {
          assertInBall(adv, x, norm, eps);
          const robust = accuracy(model, adv, y);
          assert.ok(robust < cleanAcc - 0.3, `accuracy under FAB-T ${robust} should be well below clean ${cleanAcc}`);
          // Every changed image is misclassified: the others come back clean.
          const changed = distances(adv, x, norm);
          const wrong = tf.tidy(() => tf.notEqual(tf.argMax(logits(adv), 1), y).dataSync());
          changed.forEach((dist, i) => assert.ok(dist === 0 || wrong[i] === 1, `image ${i} changed but not fooled`));
        },
      );
    });

    it('is deterministic under a fixed seed (random restarts included)', async () => {
      const run = (seed: number) =>
        noLeak(
          () => fabTargeted({ iterations: 5, targets: 1, restarts: 2 })(context(seed)),
          (adv) => adv.dataSync().slice(),
        );
      assert.deepEqual(await run(3), await run(3));
    });
  });
}
