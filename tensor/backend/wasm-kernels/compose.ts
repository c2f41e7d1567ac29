import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

/** The wasm backend's name in the kernel registry. */
export const WASM = 'wasm';

/**
 * Views a kernel input as a Tensor. The engine hands kernels the op's own Tensors; a bare TensorInfo (a backend
 * calling a kernel directly) is wrapped in a tracked tensor, which the surrounding `tf.tidy` disposes again.
 */
export function asTensor<R extends tf.Rank>(info: TensorInfo): tf.Tensor<R> {
  if (info instanceof tf.Tensor) return info as tf.Tensor<R>;
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
}

/**
 * Runs a kernel built from other ops. Ops called inside a kernel are not taped, so this only has to keep
 * intermediates from leaking: everything but the returned tensor is disposed. The engine adopts the returned
 * Tensor as the kernel's output (it is already tracked in the caller's scope).
 */
export function composed(body: () => tf.Tensor): TensorInfo {
  return tf.tidy(body);
}

/** Calls a captured original kernel and wraps its output in a Tensor that the current tidy scope tracks. */
export function callOriginal(
  original: KernelConfig,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
  backend: unknown,
): tf.Tensor {
  const out = original.kernelFunc({ inputs, attrs, backend: backend as object });
  const info = Array.isArray(out) ? out[0] : out;
  return info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info);
}

/** Pads (positive) or crops (negative) one axis at both ends. The caller's tidy owns the result. */
export function padOrCrop(t: tf.Tensor, axis: number, before: number, after: number): tf.Tensor {
  if (before === 0 && after === 0) return t;
  let out = t;
  if (before < 0 || after < 0) {
    const begin = out.shape.map(() => 0);
    const size = [...out.shape];
    begin[axis] = Math.max(0, -before);
    size[axis] = out.shape[axis] - Math.max(0, -before) - Math.max(0, -after);
    out = tf.slice(out, begin, size);
  }
  if (before > 0 || after > 0) {
    const paddings = out.shape.map(() => [0, 0] as [number, number]);
    paddings[axis] = [Math.max(0, before), Math.max(0, after)];
    out = tf.pad(out, paddings);
  }
  return out;
}

/** A registered kernel's config, or a clear error when the wasm backend lacks it. */
export function originalKernel(kernelName: string): KernelConfig {
  const config = tf.getKernel(kernelName, WASM);
  if (config == null) throw new Error(`wasm backend has no '${kernelName}' kernel to wrap`);
  return config;
}

/** The part of the wasm backend a heap kernel needs: outputs allocated on, and inputs read from, the wasm heap. */
export interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

export const isHeapBackend = (b: unknown): b is HeapBackend =>
  typeof (b as HeapBackend)?.makeOutput === 'function' && typeof (b as HeapBackend)?.typedArrayFromHeap === 'function';

export type { KernelFunc };
