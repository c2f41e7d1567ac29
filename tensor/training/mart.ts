import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../losses';

/**
 * The MART loss (Wang et al. 2020, "Improving adversarial robustness requires revisiting misclassified examples"),
 * with the constants of the authors' code (YisenWang/MART, `mart_loss`):
 *
 *   BCE = CE(z_adv, y) − mean log(1.0001 − max_{k≠y} p_adv(k) + 1e−12)
 *   KL  = mean over the batch of Σ_k p_clean(k)·(log p_clean(k) − log(p_adv(k) + 1e−12)) · (1.0000001 − p_clean(y))
 *   loss = BCE + β·KL
 *
 * where p = softmax(z). Both logit inputs keep their gradients (the clean term is not detached, as in the
 * authors' code). `labelSmoothing` applies to the CE term only. Returns a scalar the caller owns.
 */
export function martLoss(
  cleanLogits: tf.Tensor2D,
  advLogits: tf.Tensor2D,
  labels: tf.Tensor1D,
  beta: number,
  labelSmoothing = 0,
): tf.Scalar {
  return tf.tidy(() => {
    const classes = advLogits.shape[1];
    const onehot = tf.oneHot(labels.toInt(), classes).toFloat();
    const pAdv = tf.softmax(advLogits);
    // probabilities are in [0,1], so zeroing the true class leaves the largest wrong one as the row maximum
    const wrongMax = tf.max(tf.mul(pAdv, tf.sub(1, onehot)), 1);
    const bce = tf.add(
      crossEntropy(advLogits, labels, labelSmoothing),
      tf.neg(tf.mean(tf.log(tf.add(tf.sub(1.0001, wrongMax), 1e-12)))),
    );
    const pClean = tf.softmax(cleanLogits);
    const logPClean = tf.logSoftmax(cleanLogits);
    const kl = tf.sum(tf.mul(pClean, tf.sub(logPClean, tf.log(tf.add(pAdv, 1e-12)))), 1);
    const trueClean = tf.sum(tf.mul(pClean, onehot), 1);
    const robust = tf.mean(tf.mul(kl, tf.sub(1.0000001, trueClean)));
    return tf.add(bce, tf.mul(robust, beta)) as tf.Scalar;
  });
}
