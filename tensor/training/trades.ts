import * as tf from '@tensorflow/tfjs';
import { logitsFunction } from '../models/logits';

const TINY = 1e-12;

export interface TradesAttack {
  norm: 'linf' | 'l2';
  /** radius of the ball, pixel units */
  eps: number;
  /** absolute step size */
  stepSize: number;
  steps: number;
  /** seed of the start noise (derive one per batch) */
  seed: number;
}

/**
 * The TRADES inner maximisation (Zhang et al. 2019): PGD that maximises KL(p_clean ‖ p_adv) under the model in
 * inference mode, starting from x + 0.001·N(0,1) (the KL gradient vanishes at x itself, so the start is always
 * random; `randomStart` does not apply). Returns a new tensor the caller owns; nothing else survives.
 */
export function tradesAdversary(model: tf.LayersModel, x: tf.Tensor4D, a: TradesAttack): tf.Tensor4D {
  if (!(a.eps >= 0) || !(a.stepSize >= 0) || !Number.isInteger(a.steps) || a.steps < 0) {
    throw new Error(`tradesAdversary needs eps ≥ 0, stepSize ≥ 0 and integer steps ≥ 0, got ${JSON.stringify(a)}`);
  }
  const logits = logitsFunction(model);
  const kept: tf.Tensor[] = [];
  try {
    const pClean = tf.tidy(() => tf.softmax(logits(x)));
    kept.push(pClean);
    // KL(p ‖ q) = Σ p log p − Σ p log q; only the second term depends on the adversarial input.
    const grad = tf.grad((adv: tf.Tensor) =>
      tf.neg(tf.sum(tf.mul(pClean, tf.logSoftmax(logits(adv as tf.Tensor4D))))),
    ) as (adv: tf.Tensor4D) => tf.Tensor4D;
    const l2 = (t: tf.Tensor) => tf.sqrt(tf.sum(tf.square(t), [1, 2, 3], true));
    let lo: tf.Tensor | undefined;
    let hi: tf.Tensor | undefined;
    if (a.norm === 'linf') {
      lo = tf.tidy(() => tf.maximum(tf.sub(x, a.eps), 0));
      hi = tf.tidy(() => tf.minimum(tf.add(x, a.eps), 1));
      kept.push(lo, hi);
    }
    const project = (t: tf.Tensor): tf.Tensor4D => {
      if (lo && hi) return tf.minimum(tf.maximum(t, lo), hi) as tf.Tensor4D;
      const delta = tf.sub(t, x);
      const scale = tf.minimum(tf.div(a.eps, tf.add(l2(delta), TINY)), 1);
      return tf.clipByValue(tf.add(x, tf.mul(delta, scale)), 0, 1) as tf.Tensor4D;
    };
    let adv = tf.tidy(() => project(tf.add(x, tf.randomNormal(x.shape, 0, 0.001, 'float32', a.seed))));
    for (let i = 0; i < a.steps; i++) {
      const next = tf.tidy(() => {
        const g = grad(adv);
        const stepDir = a.norm === 'linf' ? tf.sign(g) : tf.div(g, tf.add(l2(g), TINY));
        return project(tf.add(adv, tf.mul(stepDir, a.stepSize)));
      });
      adv.dispose();
      adv = next;
    }
    return adv;
  } finally {
    for (const t of kept) t.dispose();
  }
}

/**
 * Mean over the batch of KL(softmax(cleanLogits) ‖ softmax(advLogits)), a scalar the caller owns. Both inputs
 * keep their gradients (TRADES differentiates through both).
 */
export function meanKl(cleanLogits: tf.Tensor2D, advLogits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(cleanLogits);
    const logQ = tf.logSoftmax(advLogits);
    return tf.mean(tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1)) as tf.Scalar;
  });
}
