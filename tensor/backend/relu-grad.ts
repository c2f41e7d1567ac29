import * as tf from '@tensorflow/tfjs';
import type { GradConfig } from '@tensorflow/tfjs';

/**
 * A kernel of our own: dx = x > 0 ? dy : 0, the ReLU gradient in one pass. Each backend that can do better than
 * tfjs's `dy · cast(step(x))` registers it (wasm: a SIMD loop; tensorflow: TensorFlow's own `ReluGrad` op).
 */
export const RELU_GRAD = 'TemperedReluGrad';

/** d(relu_grad(dy, x))/d(dy) is the ReLU gradient again; x only selects, so its gradient is zero. */
const reluGradGradConfig: GradConfig = {
  kernelName: RELU_GRAD,
  inputsToSave: ['x'],
  gradFunc: (ddx, saved) => {
    const [x] = saved;
    return {
      dy: () => tf.engine().runKernel(RELU_GRAD, { dy: ddx as tf.Tensor, x }) as tf.Tensor,
      x: () => tf.zerosLike(x),
    };
  },
};

let registered = false;

/**
 * Replaces tfjs's ReLU gradient, `dy · cast(step(x))` (three kernels and two full passes; on tensorflow `Step` alone
 * is five TensorFlow ops, a third of a PGD step on the reference CNN), with `RELU_GRAD` on float32 wherever the
 * running backend registers that kernel; other backends and dtypes keep tfjs's own gradient. Gradients are
 * registered per kernel name for all backends, hence the dispatch here. Idempotent.
 */
export function registerReluGradient(): void {
  if (registered) return;
  const original = tf.getGradient(tf.Relu);
  if (original == null) throw new Error(`tfjs has no gradient registered for '${tf.Relu}' to wrap`);
  tf.registerGradient(reluGradGradConfig);
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      if ((dy as tf.Tensor).dtype !== 'float32' || tf.getKernel(RELU_GRAD, tf.getBackend()) == null) {
        return original.gradFunc(dy, saved, attrs);
      }
      const [x] = saved;
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor };
    },
  });
  registered = true;
}
