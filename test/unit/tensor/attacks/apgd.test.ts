import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  apgd,
  apgdCheckpoints,
  apgdTargeted,
  attack,
  attackLoss,
  dlrLoss,
  dlrTargetedLoss,
  lossFunction,
} from '../../../../tensor/attacks';
import type { SuiteAttackContext } from '../../../../tensor/attacks';
import { logitsFunction } from '../../../../tensor/models/logits';
import { setupBackend, tensors, trainedFixture } from './fixture';

let model: tf.LayersModel;
let x: tf.Tensor4D;
let y: tf.Tensor1D;

/** Asserts that `f` leaves exactly as many tensors as it found, besides the one it returns. */
async function noLeak(f: () => Promise<tf.Tensor4D>): Promise<tf.Tensor4D> {
  const before = tf.memory().numTensors;
  const out = await f();
  assert.equal(tf.memory().numTensors, before + 1, 'tensors leaked');
  return out;
}

function ctx(norm: 'linf' | 'l2', eps: number, seed = 1, xs = x, ys = y): SuiteAttackContext {
  return { logits: logitsFunction(model), x: xs, y: ys, norm, eps, numClasses: 10, seed };
}

function predictions(images: tf.Tensor4D): number[] {
  return tf.tidy(() => Array.from(tf.argMax(model.apply(images, { training: false }) as tf.Tensor2D, 1).dataSync()));
}

function robustCount(images: tf.Tensor4D): number {
  const labels = Array.from(y.dataSync());
  return predictions(images).filter((p, i) => p === labels[i]).length;
}

before(async () => {
  await setupBackend();
  const fixture = await trainedFixture();
  model = fixture.model;
  ({ x, y } = tensors(fixture.testSet, 100));
});

after(() => {
  x.dispose();
  y.dispose();
  model.dispose();
});

describe('attack losses', () => {
  it('DLR and targeted DLR are unchanged when the logits are shifted and scaled', () => {
    tf.tidy(() => {
      const z = tf.randomNormal([32, 10], 0, 3, 'float32', 5) as tf.Tensor2D;
      const labels = tf.tensor1d(
        Array.from({ length: 32 }, (_, i) => i % 10),
        'int32',
      );
      const targets = tf.tensor1d(
        Array.from({ length: 32 }, (_, i) => (i + 3) % 10),
        'int32',
      );
      const moved = tf.add(tf.mul(z, 7.5), -4) as tf.Tensor2D;
      const a = dlrLoss(z, labels).arraySync();
      const b = dlrLoss(moved, labels).arraySync();
      const c = dlrTargetedLoss(z, labels, targets).arraySync();
      const d = dlrTargetedLoss(moved, labels, targets).arraySync();
      for (let i = 0; i < 32; i++) {
        assert.ok(Math.abs(a[i] - b[i]) < 1e-4, `DLR ${a[i]} vs ${b[i]}`);
        assert.ok(Math.abs(c[i] - d[i]) < 1e-4, `targeted DLR ${c[i]} vs ${d[i]}`);
      }
      // CE is not invariant: the test would catch a DLR that silently fell back to CE.
      const ce = attackLoss('ce', z, labels).arraySync();
      const ce2 = attackLoss('ce', moved, labels).arraySync();
      assert.ok(ce.some((v, i) => Math.abs(v - ce2[i]) > 1e-2));
    });
  });

  it('DLR is minus the margin over the spread of the top three, by hand', () => {
    tf.tidy(() => {
      const z = tf.tensor2d([[5, 3, 1, 0]]);
      // y on top: −(5 − 3)/(5 − 1); y = 2: −(1 − 5)/(5 − 1); targeted y=0,t=1: −(5 − 3)/(5 − (1 + 0)/2)
      assert.ok(Math.abs(dlrLoss(z, tf.tensor1d([0], 'int32')).arraySync()[0] + 0.5) < 1e-6);
      assert.ok(Math.abs(dlrLoss(z, tf.tensor1d([2], 'int32')).arraySync()[0] - 1) < 1e-6);
      const t = dlrTargetedLoss(z, tf.tensor1d([0], 'int32'), tf.tensor1d([1], 'int32')).arraySync()[0];
      assert.ok(Math.abs(t + 2 / 4.5) < 1e-6, `targeted ${t}`);
    });
  });

  it('closed-form gradients match automatic differentiation with the sorted classes held fixed', () => {
    tf.tidy(() => {
      const z = tf.randomNormal([16, 10], 0, 2, 'float32', 9) as tf.Tensor2D;
      const labels = tf.tensor1d(
        Array.from({ length: 16 }, (_, i) => (i * 3) % 10),
        'int32',
      );
      const targets = tf.tensor1d(
        Array.from({ length: 16 }, (_, i) => (i * 3 + 1) % 10),
        'int32',
      );
      const order = tf.topk(z, 4).indices.arraySync();
      const lab = labels.arraySync();
      const tar = targets.arraySync();
      const hot = (cls: number[]) => tf.oneHot(tf.tensor1d(cls, 'int32'), 10).toFloat();
      const e = [0, 1, 2, 3].map((k) => hot(order.map((r) => r[k])));
      const other = hot(order.map((r, i) => (r[0] === lab[i] ? r[1] : r[0])));
      const ey = hot(lab);
      const et = hot(tar);
      const pick = (v: tf.Tensor, m: tf.Tensor) => tf.sum(tf.mul(v, m), 1);
      const reference = {
        ce: (v: tf.Tensor) => tf.sum(tf.neg(pick(tf.logSoftmax(v), ey))),
        'ce-targeted': (v: tf.Tensor) => tf.sum(pick(tf.logSoftmax(v), et)),
        dlr: (v: tf.Tensor) =>
          tf.sum(
            tf.neg(tf.div(tf.sub(pick(v, ey), pick(v, other)), tf.add(tf.sub(pick(v, e[0]), pick(v, e[2])), 1e-12))),
          ),
        'dlr-targeted': (v: tf.Tensor) =>
          tf.sum(
            tf.neg(
              tf.div(
                tf.sub(pick(v, ey), pick(v, et)),
                tf.add(tf.sub(pick(v, e[0]), tf.mul(tf.add(pick(v, e[2]), pick(v, e[3])), 0.5)), 1e-12),
              ),
            ),
          ),
      } as const;
      for (const [name, f] of Object.entries(reference)) {
        const loss = name as keyof typeof reference;
        const ours = tf.grad((v: tf.Tensor) => tf.sum(lossFunction(loss, labels, targets)(v as tf.Tensor2D)))(z);
        const want = tf.grad(f)(z);
        const diff = tf.max(tf.abs(tf.sub(ours, want))).dataSync()[0];
        assert.ok(diff < 1e-4, `${name}: gradient differs by ${diff}`);
      }
    });
  });
});

describe('APGD', () => {
  it('checkpoints at 22, 41, 57, 70, 80, 87, 93, 99 for 100 iterations', () => {
    assert.deepEqual(apgdCheckpoints(100), [22, 41, 57, 70, 80, 87, 93, 99]);
  });

  for (const [norm, eps] of [
    ['linf', 0.03],
    ['l2', 1],
  ] as const) {
    it(`${norm}: every image stays in the ε-ball and [0,1], the loss rises, no tensor leaks`, async () => {
      {
        const adv = await noLeak(() => apgd({ iterations: 20 })(ctx(norm, eps)));
        try {
          const [dist, lo, hi] = tf.tidy(() => {
            const d = tf.sub(adv, x);
            const per = norm === 'linf' ? tf.max(tf.abs(d), [1, 2, 3]) : tf.sqrt(tf.sum(tf.square(d), [1, 2, 3]));
            return [tf.max(per).dataSync()[0], tf.min(adv).dataSync()[0], tf.max(adv).dataSync()[0]];
          });
          assert.ok(dist <= eps + 1e-5, `distance ${dist} > ε ${eps}`);
          assert.ok(lo >= 0 && hi <= 1, `outside [0,1]: [${lo}, ${hi}]`);
          assert.ok(robustCount(adv) < robustCount(x), 'APGD should break some points');
        } finally {
          adv.dispose();
        }
      }
    });
  }

  it('APGD-CE at 100 iterations never leaves more points robust than PGD-20', async () => {
    const eps = 0.02;
    const labels = Array.from(y.dataSync());
    const pgd = attack(model, x, y, { norm: 'linf', eps, steps: 20, stepSize: eps / 4, seed: 3 });
    const pgdPred = predictions(pgd);
    pgd.dispose();
    const adv = await noLeak(() => apgd({ iterations: 100 })(ctx('linf', eps, 3)));
    const apgdPred = predictions(adv);
    adv.dispose();
    const clean = robustCount(x);
    const pgdRobust = pgdPred.filter((p, i) => p === labels[i]).length;
    const apgdRobust = apgdPred.filter((p, i) => p === labels[i]).length;
    assert.ok(pgdRobust < clean && pgdRobust > 0, `ε should leave PGD-20 a partial result: ${pgdRobust}/${clean}`);
    assert.ok(apgdRobust <= pgdRobust, `APGD-CE leaves ${apgdRobust} robust, PGD-20 ${pgdRobust}`);
  });

  it('APGD-T aims at its target: broken points land mostly on the 2nd-highest clean class', async () => {
    const eps = 0.05;
    const second = tf.tidy(() => tf.topk(model.apply(x, { training: false }) as tf.Tensor2D, 2).indices.arraySync());
    const labels = Array.from(y.dataSync());
    const adv = await noLeak(() => apgdTargeted({ targets: 1, iterations: 50 })(ctx('linf', eps, 4)));
    const pred = predictions(adv);
    adv.dispose();
    const clean = predictions(x);
    let broken = 0;
    let onTarget = 0;
    pred.forEach((p, i) => {
      if (clean[i] !== labels[i] || p === labels[i]) return;
      broken++;
      if (p === second[i][1]) onTarget++;
    });
    assert.ok(broken >= 10, `APGD-T broke only ${broken}`);
    assert.ok(onTarget / broken >= 0.8, `${onTarget} of ${broken} broken points on the target class`);
  });

  it('rejects bad options with the field named', () => {
    assert.throws(() => apgd({ iterations: 0 }), /iterations/);
    assert.throws(() => apgdTargeted({ targets: 0 }), /targets/);
    assert.throws(() => apgd({ loss: 'cw' as 'ce' }), /loss/);
  });
});
