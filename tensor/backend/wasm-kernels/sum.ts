import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, composed, originalKernel, WASM } from './compose';

/**
 * Sum over the leading axes of a float32 tensor (bias gradients: [n,h,w,c] → [c]) as one matrix product,
 * ones[1, m] × x[m, inner], on XNNPACK's MatMul. wasm's own Sum first moves the reduced axes last with a scalar
 * transpose, which costs tens of times more on conv activations.
 */
export function sumLeadingAxes(xInfo: TensorInfo, axes: number, keepDims: boolean): tf.Tensor {
  return tf.tidy(() => {
    const x = asTensor(xInfo);
    const outer = x.shape.slice(0, axes).reduce((a, b) => a * b, 1);
    const innerShape = x.shape.slice(axes);
    const inner = innerShape.reduce((a, b) => a * b, 1);
    const total = tf.matMul(tf.ones([1, outer]), tf.reshape(x, [outer, inner]) as tf.Tensor2D);
    const shape = keepDims ? [...x.shape.slice(0, axes).map(() => 1), ...innerShape] : innerShape;
    return tf.reshape(total, shape);
  });
}

/** Wraps Sum: a float32 reduction over a leading run of axes (not all) halves; anything else runs the original. */
export function sumConfig(): KernelConfig {
  const original = originalKernel(tf.Sum);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const x = inputs.x as TensorInfo;
    const { axis, keepDims } = (attrs ?? {}) as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32' || x.shape[0] === 0) return original.kernelFunc({ inputs, attrs, backend });
    return composed(() => sumLeadingAxes(x, axes.length, Boolean(keepDims)));
  }) as KernelFunc;
  return { kernelName: tf.Sum, backendName: WASM, kernelFunc, setupFunc: original.setupFunc };
}
