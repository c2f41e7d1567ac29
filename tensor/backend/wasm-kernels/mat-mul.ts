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
 * Wraps BatchMatMul or _FusedMatMul: with a transpose flag set, the operand is transposed explicitly and the
 * original kernel runs with both flags off (XNNPACK); without flags the original runs untouched.
 */
function untransposed(kernelName: string): KernelConfig {
  const original = originalKernel(kernelName);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const { transposeA, transposeB } = (attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!transposeA && !transposeB) return original.kernelFunc({ inputs, attrs, backend });
    return composed(() => {
      const swapped: NamedTensorInfoMap = { ...inputs };
      if (transposeA) swapped.a = swapLast(inputs.a as TensorInfo);
      if (transposeB) swapped.b = swapLast(inputs.b as TensorInfo);
      return callOriginal(original, swapped, { ...attrs, transposeA: false, transposeB: false }, backend);
    });
  }) as KernelFunc;
  return { kernelName, backendName: WASM, kernelFunc, setupFunc: original.setupFunc };
}

export const batchMatMulConfig = (): KernelConfig => untransposed(tf.BatchMatMul);
export const fusedMatMulConfig = (): KernelConfig => untransposed(tf._FusedMatMul);
