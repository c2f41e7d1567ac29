import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, composed, isHeapBackend, padOrCrop, WASM } from './compose';
import type { HeapBackend } from './compose';
import { simdKernels } from './simd';
import type { SimdKernels } from './simd';

interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** The forward convolution's geometry (NHWC input shape, the kernel's attrs), which every form below needs. */
function convInfo(xShape: [number, number, number, number], attrs: Attrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape,
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * dW[i,j,c,o] = Σ_{n,y,x} xPadded[n, y·sh + i, x·sw + j, c] · dy[n,y,x,o], on XNNPACK in one of two forms,
 * whichever moves less data (both contract over n·oh·ow, which is the leading axis of x and dy):
 * - patches (kh·kw·ci ≤ co): the kh·kw shifted windows of the channels-first input are cut with StridedSlice
 *   into patches [kh·kw·ci, n·oh·ow], then patches × dy[n·oh·ow, co] on MatMul without transpose flags;
 * - convolution (kh·kw·ci > co): the batch becomes the channel axis, conv2d(x as [ci, h, w, n], dy as a filter
 *   [oh, ow, n, co], dilation = stride) gives [ci, kh, kw, co]; it costs two transposes instead of the patches.
 */
export function conv2dBackpropFilter(xInfo: TensorInfo, dyInfo: TensorInfo, attrs: Attrs): tf.Tensor4D {
  return tf.tidy(() => {
    let x = asTensor<tf.Rank.R4>(xInfo);
    let dy = asTensor<tf.Rank.R4>(dyInfo);
    if (attrs.dataFormat === 'NCHW') {
      x = tf.transpose(x, [0, 2, 3, 1]);
      dy = tf.transpose(dy, [0, 2, 3, 1]);
    }
    const info = convInfo(x.shape, attrs);
    const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
    const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
    const { top, left } = info.padInfo;
    const needH = (oh - 1) * sh + kh;
    const needW = (ow - 1) * sw + kw;
    let xp: tf.Tensor = padOrCrop(x, 1, top, needH - h - top);
    xp = padOrCrop(xp, 2, left, needW - w - left);
    if (kh * kw * ci > co) {
      const xt = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
      const filter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
      const dw = tf.conv2d(xt, filter, 1, 'valid', 'NHWC', [sh, sw]);
      return tf.transpose(dw, [1, 2, 0, 3]) as tf.Tensor4D;
    }
    // Channels first, so each window slice flattens to [ci, n·oh·ow] rows of the patch matrix.
    const xt = ci === 1 ? tf.reshape(xp, [1, n, needH, needW]) : tf.transpose(xp, [3, 0, 1, 2]);
    const rows: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const end = [ci, n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1];
        const window = tf.stridedSlice(xt, [0, 0, i, j], end, [1, 1, sh, sw]);
        rows.push(tf.reshape(window, [ci, n * oh * ow]));
      }
    }
    const patches = rows.length === 1 ? rows[0] : tf.concat(rows, 0);
    const dw = tf.matMul(patches as tf.Tensor2D, tf.reshape(dy, [n * oh * ow, co]) as tf.Tensor2D);
    return tf.reshape(dw, [kh, kw, ci, co]) as tf.Tensor4D;
  });
}

/**
 * The same gradient as one MatMul without transpose flags, patches[kh·kw·ci, n·oh·ow] × dy[n·oh·ow, co], where the
 * SIMD kernel writes the patches in one pass over x (NHWC): no strided slices, concat or transposes, and XNNPACK
 * packs only dy. Measured on the reference CNN (CPU time, one thread): first layer 7.7 ms vs 11.1 ms for
 * `conv2dBackpropFilter`, second layer 31 ms vs 41 ms.
 */
export function conv2dBackpropFilterIm2col(
  xInfo: TensorInfo,
  dyInfo: TensorInfo,
  attrs: Attrs,
  backend: HeapBackend,
  simd: SimdKernels,
): tf.Tensor4D {
  const [n, h, w, ci] = xInfo.shape;
  const info = convInfo([n, h, w, ci], attrs);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
  const co = info.outChannels;
  const p = n * oh * ow;
  const patchesInfo = backend.makeOutput([kh * kw * ci, p], 'float32');
  const { top, left } = info.padInfo;
  simd.im2colT(simd.ptr(xInfo), simd.ptr(patchesInfo), n, h, w, ci, kh, kw, oh, ow, sh, sw, top, left);
  return tf.tidy(() => {
    const patches = asTensor<tf.Rank.R2>(patchesInfo);
    const dw = tf.matMul(patches, tf.reshape(asTensor(dyInfo), [p, co]) as tf.Tensor2D);
    return tf.reshape(dw, [kh, kw, ci, co]) as tf.Tensor4D;
  });
}

/**
 * Taps (kh·kw·ci) at or below which the direct SIMD kernel beats im2col + MatMul. With few taps the product has
 * that few rows, and XNNPACK repacks its [positions, co] weight matrix (dy, new every step) on every call:
 * measured (CPU time, one thread, fresh dy) 8 ms vs 29 ms for [128,28,28,1] → 32 channels, 16 ms vs 22 ms for
 * [128,32,32,3] → 16, even at 72 taps, and 57 ms vs 48 ms at 288 taps ([128,13,13,32] → 64).
 */
const DIRECT_MAX_TAPS = 36;

/** dw by the direct kernel: per image, each position's taps times its dy row, summed in a per-image scratch. */
export function conv2dBackpropFilterDirect(
  xInfo: TensorInfo,
  dyInfo: TensorInfo,
  attrs: Attrs,
  backend: HeapBackend,
  simd: SimdKernels,
): TensorInfo {
  const [n, h, w, ci] = xInfo.shape;
  const info = convInfo([n, h, w, ci], attrs);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
  const co = info.outChannels;
  const { top, left } = info.padInfo;
  const out = backend.makeOutput([kh, kw, ci, co], 'float32');
  simd.withScratch(kh * kw * ci * co * 4, (part) =>
    simd.conv2dFewChannelsFilterGrad(
      simd.ptr(xInfo),
      simd.ptr(dyInfo),
      simd.ptr(out),
      part,
      ...([n, h, w, ci, kh, kw, oh, ow, co, sh, sw, top, left] as const),
    ),
  );
  return out;
}

const kernelFunc = (({ inputs, attrs, backend }) => {
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  const a = attrs as unknown as Attrs;
  const simd = simdKernels(backend);
  if (simd && isHeapBackend(backend) && a.dataFormat !== 'NCHW' && x.dtype === 'float32' && dy.dtype === 'float32') {
    const [kh, kw, ci, co] = a.filterShape;
    if (kh * kw * ci <= DIRECT_MAX_TAPS && co % 4 === 0) return conv2dBackpropFilterDirect(x, dy, a, backend, simd);
    return composed(() => conv2dBackpropFilterIm2col(x, dy, a, backend, simd));
  }
  return composed(() => conv2dBackpropFilter(x, dy, a));
}) as KernelFunc;

/**
 * Conv2DBackpropFilter is missing from tfjs-backend-wasm 4.22: SIMD im2col + XNNPACK MatMul, or without the SIMD
 * kernels a composition of XNNPACK-backed ops.
 */
export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: WASM,
  kernelFunc,
};
