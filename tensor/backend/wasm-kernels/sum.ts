import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, composed, isHeapBackend, originalKernel, WASM } from './compose';
import type { HeapBackend } from './compose';
import { simdKernels } from './simd';

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

/**
 * The same reduction in one pass over the wasm heap, summing rows of `inner` values into a float64 accumulator.
 * The MatMul form makes XNNPACK pack the whole input as its weight matrix on every call (it is new data each
 * time), which costs more than the sum itself. Returns a new TensorInfo on the backend.
 */
export function sumLeadingAxesHeap(x: TensorInfo, axes: number, keepDims: boolean, backend: HeapBackend): TensorInfo {
  const innerShape = x.shape.slice(axes);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const outer = x.shape.slice(0, axes).reduce((a, b) => a * b, 1);
  const shape = keepDims ? [...x.shape.slice(0, axes).map(() => 1), ...innerShape] : innerShape;
  const out = backend.makeOutput(shape, 'float32');
  const X = backend.typedArrayFromHeap(x);
  const acc = new Float64Array(inner);
  for (let r = 0, p = 0; r < outer; r++) {
    for (let i = 0; i < inner; i++, p++) acc[i] += X[p];
  }
  backend.typedArrayFromHeap(out).set(acc);
  return out;
}

/**
 * Wraps Sum: a float32 reduction over a leading run of axes (not all) runs on the heap (SIMD kernel, else the JS
 * pass); anything else the original.
 */
export function sumConfig(): KernelConfig {
  const original = originalKernel(tf.Sum);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const x = inputs.x as TensorInfo;
    const { axis, keepDims } = (attrs ?? {}) as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32' || x.shape[0] === 0) return original.kernelFunc({ inputs, attrs, backend });
    const simd = simdKernels(backend);
    if (simd && isHeapBackend(backend)) {
      const inner = x.shape.slice(axes.length).reduce((a, b) => a * b, 1);
      const outer = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
      const innerShape = x.shape.slice(axes.length);
      const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...innerShape] : innerShape, 'float32');
      simd.withScratch(inner * 8, (acc) => simd.sumRows(simd.ptr(x), simd.ptr(out), acc, outer, inner));
      return out;
    }
    if (isHeapBackend(backend)) return sumLeadingAxesHeap(x, axes.length, Boolean(keepDims), backend);
    return composed(() => sumLeadingAxes(x, axes.length, Boolean(keepDims)));
  }) as KernelFunc;
  return { kernelName: tf.Sum, backendName: WASM, kernelFunc, setupFunc: original.setupFunc };
}
