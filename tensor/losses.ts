import * as tf from '@tensorflow/tfjs';

/**
 * Mean softmax cross-entropy from logits against integer labels, with optional label smoothing.
 * Returns a scalar the caller owns.
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, labelSmoothing = 0): tf.Scalar {
  return tf.tidy(() => {
    const classes = logits.shape[1];
    let target = tf.oneHot(labels.toInt(), classes).toFloat();
    if (labelSmoothing > 0) target = target.mul(1 - labelSmoothing).add(labelSmoothing / classes);
    const logp = tf.logSoftmax(logits);
    return target.mul(logp).sum(1).neg().mean() as tf.Scalar;
  });
}

/** Per-example softmax cross-entropy, shape [batch]. The caller owns the result. */
export function crossEntropyPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const target = tf.oneHot(labels.toInt(), logits.shape[1]).toFloat();
    return target.mul(tf.logSoftmax(logits)).sum(1).neg() as tf.Tensor1D;
  });
}
