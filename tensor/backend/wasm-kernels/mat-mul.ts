import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, callOriginal, composed, originalKernel, WASM } from './compose';

/** Swaps the last two axes: a plain copy, so the product can take XNNPACK's no-transpose path. */
function swapLast(info: TensorInfo): tf.Tensor {
  const t = asTensor(info);
  const r = t.shape.length;
  const perm = t.shape.map((_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

/**
 * tfjs-backend-wasm 4.22 caches its XNNPACK fully-connected operator (with b packed as the weights) under b's
 * data id alone, not b's shape, until that data is disposed. A reshape shares the data id, so using the same data
 * as b under a second [k, n] (e.g. sum(x, [0,1,2]) then sum(x, [0,1])) silently reuses the first packing and
 * returns wrong numbers. The first [k, n] seen per data id is remembered; another one gets a private copy of b.
 */
const weightShapes = new WeakMap<object, string>();

function distinctWeights(b: TensorInfo): TensorInfo | undefined {
  const key = b.shape.join('x');
  const seen = weightShapes.get(b.dataId);
  if (seen === undefined) weightShapes.set(b.dataId, key);
  return seen === undefined || seen === key ? undefined : tf.mul(asTensor(b), 1);
}

/**
 * Wraps BatchMatMul or _FusedMatMul: with a transpose flag set, the operand is transposed explicitly and the
 * original kernel runs with both flags off (XNNPACK); without flags the original runs untouched.
 */
function untransposed(kernelName: string): KernelConfig {
  const original = originalKernel(kernelName);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const { transposeA, transposeB } = (attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!transposeA && !transposeB && weightShapes.get((inputs.b as TensorInfo).dataId) === undefined) {
      weightShapes.set((inputs.b as TensorInfo).dataId, (inputs.b as TensorInfo).shape.join('x'));
      return original.kernelFunc({ inputs, attrs, backend });
    }
    return composed(() => {
      const swapped: NamedTensorInfoMap = { ...inputs };
      if (transposeA) swapped.a = swapLast(inputs.a as TensorInfo);
      if (transposeB) swapped.b = swapLast(inputs.b as TensorInfo);
      else swapped.b = distinctWeights(inputs.b as TensorInfo) ?? (inputs.b as TensorInfo);
      return callOriginal(original, swapped, { ...attrs, transposeA: false, transposeB: false }, backend);
    });
  }) as KernelFunc;
  return { kernelName, backendName: WASM, kernelFunc, setupFunc: original.setupFunc };
}

export const batchMatMulConfig = (): KernelConfig => untransposed(tf.BatchMatMul);
export const fusedMatMulConfig = (): KernelConfig => untransposed(tf._FusedMatMul);
