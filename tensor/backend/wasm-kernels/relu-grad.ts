import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, composed, isHeapBackend, WASM } from './compose';
import { simdKernels } from './simd';

/** A kernel of our own: dx = x > 0 ? dy : 0, the ReLU gradient in one pass. */
export const RELU_GRAD = 'TemperedReluGrad';

const kernelFunc = (({ inputs, backend }) => {
  const dy = inputs.dy as TensorInfo;
  const x = inputs.x as TensorInfo;
  const simd = simdKernels(backend);
  if (simd && isHeapBackend(backend) && dy.dtype === 'float32' && x.dtype === 'float32') {
    const out = backend.makeOutput([...x.shape], 'float32');
    simd.reluGrad(simd.ptr(dy), simd.ptr(x), simd.ptr(out), tf.util.sizeFromShape(x.shape));
    return out;
  }
  return composed(() => tf.mul(asTensor(dy), tf.cast(tf.step(asTensor(x)), 'float32')));
}) as KernelFunc;

export const reluGradConfig: KernelConfig = { kernelName: RELU_GRAD, backendName: WASM, kernelFunc };

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

/**
 * Replaces tfjs's ReLU gradient, `dy · cast(step(x))` (three kernels, two full passes and a copy on wasm), with the
 * one-pass kernel when the wasm backend runs; every other backend keeps tfjs's own gradient. Gradients are
 * registered per kernel name for all backends, hence the dispatch here rather than a wasm-only registration.
 */
export function registerReluGradient(): void {
  const original = tf.getGradient(tf.Relu);
  if (original == null) throw new Error(`tfjs has no gradient registered for '${tf.Relu}' to wrap`);
  tf.registerGradient(reluGradGradConfig);
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== WASM || (dy as tf.Tensor).dtype !== 'float32') {
        return original.gradFunc(dy, saved, attrs);
      }
      const [x] = saved;
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor };
    },
  });
}
