import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, callOriginal, composed, isHeapBackend, originalKernel, WASM } from './compose';
import type { HeapBackend } from './compose';
import { simdKernels } from './simd';

interface Attrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** True when the pooling is 2×2, stride 2 and needs no padding: the case the composed gradient covers. */
export function isTwoByTwo(inputShape: number[], attrs: Attrs): boolean {
  const info = tf.backend_util.computePool2DInfo(
    inputShape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { top, bottom, left, right } = info.padInfo;
  return (
    info.filterHeight === 2 &&
    info.filterWidth === 2 &&
    info.strideHeight === 2 &&
    info.strideWidth === 2 &&
    top === 0 &&
    left === 0 &&
    bottom === 0 &&
    right === 0
  );
}

/**
 * Gradient of a 2×2 stride-2 VALID max pool from XNNPACK-backed element-wise ops and one max pool, with no
 * comparison or select kernels (the wasm backend runs those as slow scalar loops). The input is viewed as
 * [n·oh, 2, ow, 2, c] and broadcast against the pooled output; dy goes to the first of the four window
 * elements (row-major) that equals the maximum, the cpu backend's tie rule (ties are common after relu):
 *   below = step(y − x)                      1 where x is under its window's max, 0 at every max
 *   score = (1 − below) · [[4, 3], [2, 1]]   a max scores its priority, anything else 0
 *   first = 1 − step(maxPool(score) − score) 1 only at the highest-priority max
 *   dx    = first · dy
 * Rows/columns that no window covers (odd sizes) get zero.
 */
export function maxPoolGrad2x2(dyInfo: TensorInfo, xInfo: TensorInfo, yInfo: TensorInfo): tf.Tensor4D {
  return tf.tidy(() => {
    const x = asTensor<tf.Rank.R4>(xInfo);
    const [n, h, w, c] = x.shape;
    const [, oh, ow] = asTensor(yInfo).shape;
    const quarter = [n * oh, 1, ow, 1, c];
    const full = [n * oh, 2, ow, 2, c];
    const cropped = h !== 2 * oh || w !== 2 * ow;
    const xc = cropped ? tf.slice(x, [0, 0, 0, 0], [n, 2 * oh, 2 * ow, c]) : x;
    const y = tf.reshape(asTensor(yInfo), quarter);
    const below = tf.step(tf.sub(y, tf.reshape(xc, full)));
    // Tiled along c, so the broadcast repeats whole channel rows (XNNPACK is slow on a broadcast inner axis).
    const priority = tf.tile(tf.tensor([4, 3, 2, 1], [1, 2, 1, 2, 1], 'float32'), [1, 1, 1, 1, c]);
    const score = tf.mul(tf.sub(1, below), priority);
    const best = tf.maxPool(tf.reshape(score, [n, 2 * oh, 2 * ow, c]) as tf.Tensor4D, 2, 2, 'valid');
    const first = tf.sub(1, tf.step(tf.sub(tf.reshape(best, quarter), score)));
    let dx: tf.Tensor = tf.reshape(tf.mul(first, tf.reshape(asTensor(dyInfo), quarter)), [n, 2 * oh, 2 * ow, c]);
    if (cropped) {
      dx = tf.pad(dx, [
        [0, 0],
        [0, h - 2 * oh],
        [0, w - 2 * ow],
        [0, 0],
      ]);
    }
    return dx as tf.Tensor4D;
  });
}

/**
 * The same gradient in one pass over the wasm heap: each window is read once and dy written to its first
 * maximum. It is memory-bound, and one pass beats the nine passes of the composed version (measured on the
 * reference CNN's first pool, [128,26,26,32]: ~4× faster than `maxPoolGrad2x2`, ~10× faster than wasm's own
 * kernel), so it is what the registered kernel runs. Returns a new TensorInfo on the backend.
 */
export function maxPoolGrad2x2Heap(dy: TensorInfo, x: TensorInfo, y: TensorInfo, backend: HeapBackend): TensorInfo {
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = y.shape;
  const out = backend.makeOutput([n, h, w, c], 'float32');
  // Views are taken after the allocation: growing the heap detaches older views.
  const X = backend.typedArrayFromHeap(x);
  const Y = backend.typedArrayFromHeap(y);
  const G = backend.typedArrayFromHeap(dy);
  const D = backend.typedArrayFromHeap(out);
  if (h !== 2 * oh || w !== 2 * ow) D.fill(0);
  const row = w * c;
  let q = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const r0 = (b * h + 2 * i) * row;
      for (let j = 0; j < ow; j++) {
        const p00 = r0 + 2 * j * c;
        const p01 = p00 + c;
        const p10 = p00 + row;
        const p11 = p10 + c;
        for (let k = 0; k < c; k++, q++) {
          const m = Y[q];
          const g = G[q];
          const a = X[p00 + k] === m;
          const bb = !a && X[p01 + k] === m;
          const cc = !a && !bb && X[p10 + k] === m;
          D[p00 + k] = a ? g : 0;
          D[p01 + k] = bb ? g : 0;
          D[p10 + k] = cc ? g : 0;
          D[p11 + k] = a || bb || cc ? 0 : g;
        }
      }
    }
  }
  return out;
}

/**
 * Replaces wasm's scalar MaxPoolGrad for 2×2 stride-2 unpadded float32 pooling: the SIMD kernel (kernels.c, ~6×
 * faster than the JS heap pass on [128,26,26,32]), else the JS heap pass, else the composed ops on a backend
 * without heap access. Every other configuration goes to the original kernel, captured when this config is built
 * (after the wasm backend's kernels are registered).
 */
export function maxPoolGradConfig(): KernelConfig {
  const original = originalKernel(tf.MaxPoolGrad);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const a = attrs as unknown as Attrs;
    const x = inputs.input as TensorInfo;
    const dy = inputs.dy as TensorInfo;
    const y = inputs.output as TensorInfo;
    if (!isTwoByTwo(x.shape, a) || x.dtype !== 'float32') return callOriginal(original, inputs, attrs ?? {}, backend);
    const simd = simdKernels(backend);
    if (simd && isHeapBackend(backend)) {
      const [n, h, w, c] = x.shape;
      const out = backend.makeOutput([n, h, w, c], 'float32');
      simd.maxPoolGrad2x2(simd.ptr(x), simd.ptr(y), simd.ptr(dy), simd.ptr(out), n, h, w, c, y.shape[1], y.shape[2]);
      return out;
    }
    if (isHeapBackend(backend)) return maxPoolGrad2x2Heap(dy, x, y, backend);
    return composed(() => maxPoolGrad2x2(dy, x, y));
  }) as KernelFunc;
  return { kernelName: tf.MaxPoolGrad, backendName: WASM, kernelFunc, setupFunc: original.setupFunc };
}
