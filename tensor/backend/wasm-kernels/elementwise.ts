import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { isHeapBackend, originalKernel, WASM } from './compose';
import type { HeapBackend } from './compose';
import { simdKernels } from './simd';
import type { SimdKernels } from './simd';

const sameShape = (a: TensorInfo, b: TensorInfo) =>
  a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);

const bothFloat = (a: TensorInfo, b: TensorInfo) => a.dtype === 'float32' && b.dtype === 'float32';

/**
 * Wraps a binary kernel: `fast` runs on float32 inputs when the SIMD kernels are loaded and returns a result, or
 * undefined to defer; everything else goes to the backend's own kernel.
 */
function withFastPath(
  kernelName: string,
  fast: (a: TensorInfo, b: TensorInfo, backend: HeapBackend, simd: SimdKernels) => TensorInfo | undefined,
): KernelConfig {
  const original = originalKernel(kernelName);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const a = inputs.a as TensorInfo;
    const b = inputs.b as TensorInfo;
    const simd = bothFloat(a, b) ? simdKernels(backend) : undefined;
    const out = simd && isHeapBackend(backend) ? fast(a, b, backend, simd) : undefined;
    return out ?? original.kernelFunc({ inputs, attrs, backend });
  }) as KernelFunc;
  return { kernelName, backendName: WASM, kernelFunc, setupFunc: original.setupFunc };
}

/**
 * Maximum and Minimum of two same-shape float32 tensors (PGD's projection onto the ε-box, every step): wasm runs
 * these as a scalar broadcasting loop, ~16 ns per element; f32x4.max/min keep NaN propagation.
 */
function elementwise(kernelName: string, run: (s: SimdKernels) => SimdKernels['maximum']): KernelConfig {
  return withFastPath(kernelName, (a, b, backend, simd) => {
    if (!sameShape(a, b)) return undefined;
    const out = backend.makeOutput([...a.shape], 'float32');
    run(simd)(simd.ptr(a), simd.ptr(b), simd.ptr(out), tf.util.sizeFromShape(a.shape));
    return out;
  });
}

export const maximumConfig = (): KernelConfig => elementwise(tf.Maximum, (s) => s.maximum);
export const minimumConfig = (): KernelConfig => elementwise(tf.Minimum, (s) => s.minimum);

/** True when `bias` broadcasts along the last axis of `x` only: shape [c] or [1, …, 1, c] with c = x's last axis. */
function isChannelBias(x: TensorInfo, bias: TensorInfo): boolean {
  const r = bias.shape.length;
  const c = x.shape[x.shape.length - 1];
  return (
    x.shape.length >= 2 &&
    r >= 1 &&
    r <= x.shape.length &&
    bias.shape.every((d, i) => (i === r - 1 ? d === c : d === 1))
  );
}

/**
 * Add of a per-channel bias to an activation (tfjs-layers adds a convolution's bias as its own op under a gradient
 * tape): one SIMD pass, ~3× faster than wasm's broadcasting Add on [128,26,26,32]. Other adds run the original.
 */
export const addConfig = (): KernelConfig =>
  withFastPath(tf.Add, (a, b, backend, simd) => {
    const [x, bias] = isChannelBias(a, b) ? [a, b] : isChannelBias(b, a) ? [b, a] : [undefined, undefined];
    if (x === undefined || bias === undefined) return undefined;
    const c = x.shape[x.shape.length - 1];
    const out = backend.makeOutput([...x.shape], 'float32');
    simd.addBias(simd.ptr(x), simd.ptr(bias), simd.ptr(out), tf.util.sizeFromShape(x.shape) / c, c);
    return out;
  });
