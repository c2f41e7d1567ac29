import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, callOriginal, composed, originalKernel, WASM } from './compose';

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
 * Gradient of a 2×2 stride-2 VALID max pool from element-wise ops: the input is viewed as [n·oh, 2, ow, 2, c],
 * and dy goes to the first of the four window elements (row-major) that equals the pooled maximum, which is the
 * cpu backend's tie rule (ties are common after relu). Rows/columns that no window covers get zero.
 */
export function maxPoolGrad2x2(dyInfo: TensorInfo, xInfo: TensorInfo, yInfo: TensorInfo): tf.Tensor4D {
  return tf.tidy(() => {
    const x = asTensor<tf.Rank.R4>(xInfo);
    const [n, h, w, c] = x.shape;
    const [, oh, ow] = asTensor(yInfo).shape;
    const shape = [n * oh, 1, ow, 1, c];
    const xc = h !== 2 * oh || w !== 2 * ow ? tf.slice(x, [0, 0, 0, 0], [n, 2 * oh, 2 * ow, c]) : x;
    const xr = tf.reshape(xc, [n * oh, 2, ow, 2, c]);
    const y = tf.reshape(asTensor(yInfo), shape);
    const dy = tf.reshape(asTensor(dyInfo), shape);
    const zero = tf.zerosLike(dy);
    const hit = (a: number, b: number) => tf.equal(tf.slice(xr, [0, a, 0, b, 0], shape), y);
    let rest: tf.Tensor = dy;
    const parts: tf.Tensor[] = [];
    for (const [a, b] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ] as const) {
      const m = hit(a, b);
      parts.push(tf.where(m, rest, zero));
      if (a + b < 2) rest = tf.where(m, zero, rest);
    }
    const top = tf.concat([parts[0], parts[1]], 3);
    const bottom = tf.concat([parts[2], parts[3]], 3);
    let dx: tf.Tensor = tf.reshape(tf.concat([top, bottom], 1), [n, 2 * oh, 2 * ow, c]);
    if (h !== 2 * oh || w !== 2 * ow) {
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
 * Replaces wasm's scalar MaxPoolGrad for 2×2 stride-2 unpadded pooling; every other configuration goes to the
 * original kernel, captured when this config is built (after the wasm backend's kernels are registered).
 */
export function maxPoolGradConfig(): KernelConfig {
  const original = originalKernel(tf.MaxPoolGrad);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const a = attrs as unknown as Attrs;
    const x = inputs.input as TensorInfo;
    if (!isTwoByTwo(x.shape, a)) return callOriginal(original, inputs, attrs ?? {}, backend);
    return composed(() => maxPoolGrad2x2(inputs.dy as TensorInfo, x, inputs.output as TensorInfo));
  }) as KernelFunc;
  return { kernelName: tf.MaxPoolGrad, backendName: WASM, kernelFunc, setupFunc: original.setupFunc };
}
