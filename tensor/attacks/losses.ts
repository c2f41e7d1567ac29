import * as tf from '@tensorflow/tfjs';

/**
 * The per-example losses an attack maximises, all functions of the logits z (one row per image):
 * - `ce`: cross-entropy of the true label y, −log softmax(z)_y.
 * - `dlr`: difference of logits ratio (Croce & Hein 2020), −(z_y − max_{i≠y} z_i)/(z_π1 − z_π3 + 1e−12) with
 *   π the classes sorted by decreasing logit. Invariant to shifting and (positive) scaling of the logits.
 * - `ce-targeted`: log softmax(z)_t, rises as the target t gains.
 * - `dlr-targeted`: −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2 + 1e−12).
 */
export type AttackLoss = 'ce' | 'dlr' | 'ce-targeted' | 'dlr-targeted';

const TINY = 1e-12;

/** Classes a loss needs the logits to have. */
export function minClasses(loss: AttackLoss): number {
  return loss === 'dlr' ? 3 : loss === 'dlr-targeted' ? 4 : 2;
}

export function isTargeted(loss: AttackLoss): boolean {
  return loss === 'ce-targeted' || loss === 'dlr-targeted';
}

function checkArgs(loss: AttackLoss, z: tf.Tensor2D, y: tf.Tensor1D, t: tf.Tensor1D | undefined): void {
  const classes = z.shape[1];
  if (classes < minClasses(loss)) {
    throw new Error(`loss '${loss}' needs logits of at least ${minClasses(loss)} classes, got ${classes}`);
  }
  if (y.shape[0] !== z.shape[0]) throw new Error(`${z.shape[0]} logit rows but ${y.shape[0]} labels`);
  if (isTargeted(loss) && (t === undefined || t.shape[0] !== z.shape[0])) {
    throw new Error(`targeted loss '${loss}' needs one target per logit row (${z.shape[0]}), got ${t?.shape[0]}`);
  }
}

/** One-hot rows of the classes at sorted positions 0..k-1 (π1..πk), as float [b,C] each. Inside a tidy. */
function sortedOneHots(z: tf.Tensor2D, k: number): tf.Tensor2D[] {
  const classes = z.shape[1];
  const { indices } = tf.topk(z, k);
  return tf.split(indices, k, 1).map((col) => tf.oneHot(tf.reshape(col, [-1]), classes).toFloat() as tf.Tensor2D);
}

const pick = (z: tf.Tensor2D, onehot: tf.Tensor2D) => tf.sum(tf.mul(z, onehot), 1) as tf.Tensor1D;

interface ValueAndGrad {
  value: tf.Tensor1D;
  /** d value_i / d z_i, shape [b,C]. */
  grad: tf.Tensor2D;
}

/** Per-example loss and its gradient with respect to the logits, in closed form. Inside a tidy. */
function valueAndGrad(loss: AttackLoss, z: tf.Tensor2D, y: tf.Tensor1D, t?: tf.Tensor1D): ValueAndGrad {
  const classes = z.shape[1];
  const ey = tf.oneHot(y, classes).toFloat() as tf.Tensor2D;
  if (loss === 'ce' || loss === 'ce-targeted') {
    const logp = tf.logSoftmax(z);
    const p = tf.exp(logp);
    if (loss === 'ce') return { value: tf.neg(pick(logp as tf.Tensor2D, ey)), grad: tf.sub(p, ey) as tf.Tensor2D };
    const et = tf.oneHot(t!, classes).toFloat() as tf.Tensor2D;
    return { value: pick(logp as tf.Tensor2D, et), grad: tf.sub(et, p) as tf.Tensor2D };
  }
  if (loss === 'dlr') {
    const [e1, e2, e3] = sortedOneHots(z, 3);
    // The strongest other class: π2 when the label is on top, else π1.
    const yOnTop = tf.reshape(tf.equal(pick(e1, ey), 1), [-1, 1]);
    const eo = tf.where(yOnTop, e2, e1) as tf.Tensor2D;
    const margin = tf.sub(pick(z, ey), pick(z, eo));
    const den = tf.add(tf.sub(pick(z, e1), pick(z, e3)), TINY);
    const value = tf.neg(tf.div(margin, den)) as tf.Tensor1D;
    // −(e_y − e_o)/den + margin/den² · (e_π1 − e_π3)
    const grad = tf.add(
      tf.div(tf.sub(eo, ey), tf.reshape(den, [-1, 1])),
      tf.mul(tf.reshape(tf.div(margin, tf.square(den)), [-1, 1]), tf.sub(e1, e3)),
    ) as tf.Tensor2D;
    return { value, grad };
  }
  const [e1, , e3, e4] = sortedOneHots(z, 4);
  const et = tf.oneHot(t!, classes).toFloat() as tf.Tensor2D;
  const margin = tf.sub(pick(z, ey), pick(z, et));
  const den = tf.add(tf.sub(pick(z, e1), tf.mul(tf.add(pick(z, e3), pick(z, e4)), 0.5)), TINY);
  const value = tf.neg(tf.div(margin, den)) as tf.Tensor1D;
  const dden = tf.sub(e1, tf.mul(tf.add(e3, e4), 0.5));
  const grad = tf.add(
    tf.div(tf.sub(et, ey), tf.reshape(den, [-1, 1])),
    tf.mul(tf.reshape(tf.div(margin, tf.square(den)), [-1, 1]), dden),
  ) as tf.Tensor2D;
  return { value, grad };
}

/**
 * Per-example value of `loss` on logits `z` against labels `y` (and targets `t` for the targeted losses), shape
 * [batch]. Returns a new tensor the caller owns.
 */
export function attackLoss(loss: AttackLoss, z: tf.Tensor2D, y: tf.Tensor1D, t?: tf.Tensor1D): tf.Tensor1D {
  checkArgs(loss, z, y, t);
  return tf.tidy(() => valueAndGrad(loss, z, y, t).value);
}

/** DLR loss per example (untargeted). Caller owns the result. */
export function dlrLoss(z: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D {
  return attackLoss('dlr', z, y);
}

/** Targeted DLR loss per example, towards `t`. Caller owns the result. */
export function dlrTargetedLoss(z: tf.Tensor2D, y: tf.Tensor1D, t: tf.Tensor1D): tf.Tensor1D {
  return attackLoss('dlr-targeted', z, y, t);
}

/**
 * A differentiable per-example loss for use inside `tf.grad`: its gradient with respect to the logits is written
 * in closed form (the sort in DLR has no gradient kernel in tfjs, and the classes it picks are constants almost
 * everywhere). `y` and `t` are held by the caller for as long as the returned function is used.
 */
export function lossFunction(loss: AttackLoss, y: tf.Tensor1D, t?: tf.Tensor1D): (z: tf.Tensor2D) => tf.Tensor1D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const zz = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    checkArgs(loss, zz, y, t);
    save([zz]);
    return {
      value: valueAndGrad(loss, zz, y, t).value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.mul(valueAndGrad(loss, saved[0] as tf.Tensor2D, y, t).grad, tf.reshape(dy, [-1, 1])),
    };
  });
  return (z) => op(z) as tf.Tensor1D;
}
