import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, composed, isHeapBackend, padOrCrop, WASM } from './compose';
import type { HeapBackend } from './compose';
import { simdKernels } from './simd';

interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * dx = conv2d(dilate(dy) padded by (k−1−pad), flip(W) with in/out channels swapped), one stride-1 convolution on
 * XNNPACK instead of the backend's scalar loop, with the padding passed to XNNPACK (a crop, when the forward
 * padding exceeds k−1, is a slice). Stride s dilates dy by inserting s−1 zeros.
 */
export function conv2dBackpropInput(dyInfo: TensorInfo, filterInfo: TensorInfo, attrs: Attrs): tf.Tensor4D {
  return tf.tidy(() => {
    let dy = asTensor<tf.Rank.R4>(dyInfo);
    const filter = asTensor<tf.Rank.R4>(filterInfo);
    const nchw = attrs.dataFormat === 'NCHW';
    if (nchw) dy = tf.transpose(dy, [0, 2, 3, 1]);
    const [n, a, b, c] = attrs.inputShape;
    const inShape: [number, number, number, number] = nchw ? [n, b, c, a] : [n, a, b, c];
    const info = tf.backend_util.computeConv2DInfo(
      inShape,
      filter.shape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    const { inHeight: h, inWidth: w, strideHeight: sh, strideWidth: sw } = info;
    const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow, outChannels: co } = info;
    let d: tf.Tensor = dy;
    if (sh > 1 || sw > 1) {
      d = tf.reshape(dy, [n, oh, 1, ow, 1, co]);
      d = tf.pad(d, [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ]);
      d = tf.reshape(d, [n, oh * sh, ow * sw, co]);
    }
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = h + kh - 1 - top - oh * sh;
    const right = w + kw - 1 - left - ow * sw;
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    let dx: tf.Tensor4D;
    if (Math.min(top, left, bottom, right) >= 0) {
      // XNNPACK pads implicitly: no padded copy of dy.
      const explicit: tf.backend_util.ExplicitPadding = [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ];
      dx = tf.conv2d(d as tf.Tensor4D, flipped, 1, explicit);
    } else {
      d = padOrCrop(d, 1, top, bottom);
      d = padOrCrop(d, 2, left, right);
      dx = tf.conv2d(d as tf.Tensor4D, flipped, 1, 'valid');
    }
    return nchw ? tf.transpose(dx, [0, 3, 1, 2]) : dx;
  });
}

/**
 * The same gradient as one product and a scatter: cols = dy[n·oh·ow, co] × Wᵀ[co, kh·kw·ci] on XNNPACK's MatMul,
 * then each row of cols is added into the kh×kw window of dx it came from (col2im), one pass in JS over the
 * wasm heap. It does no work on the zeros that the convolution form pads and dilates dy with, and it avoids
 * XNNPACK convolutions with few output channels (ci = 1 on a first layer), which run far below peak.
 * NHWC only; returns a new TensorInfo on the backend.
 */
export function conv2dBackpropInputCol2im(
  dyInfo: TensorInfo,
  filterInfo: TensorInfo,
  attrs: Attrs,
  backend: HeapBackend,
): TensorInfo {
  const [n, h, w, ci] = attrs.inputShape;
  const [kh, kw, , co] = filterInfo.shape;
  const info = tf.backend_util.computeConv2DInfo(
    [n, h, w, ci],
    [kh, kw, ci, co],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const { top, left } = info.padInfo;
  const k = kh * kw * ci;
  const cols = tf.tidy(() => {
    const wt = tf.transpose(tf.reshape(asTensor(filterInfo), [k, co]));
    return tf.matMul(tf.reshape(asTensor(dyInfo), [n * oh * ow, co]) as tf.Tensor2D, wt as tf.Tensor2D);
  });
  try {
    const out = backend.makeOutput([n, h, w, ci], 'float32');
    const simd = simdKernels(backend);
    if (simd) {
      simd.col2im(simd.ptr(cols), simd.ptr(out), n, h, w, ci, kh, kw, oh, ow, sh, sw, top, left);
      return out;
    }
    // Views are taken after the allocation: growing the heap detaches older views.
    const C = backend.typedArrayFromHeap(cols);
    const D = backend.typedArrayFromHeap(out);
    D.fill(0);
    let src = 0;
    for (let b = 0; b < n; b++) {
      for (let y = 0; y < oh; y++) {
        const y0 = y * sh - top;
        for (let x = 0; x < ow; x++, src += k) {
          const x0 = x * sw - left;
          for (let i = 0; i < kh; i++) {
            const iy = y0 + i;
            if (iy < 0 || iy >= h) continue;
            const rowStart = (b * h + iy) * w;
            for (let j = 0; j < kw; j++) {
              const ix = x0 + j;
              if (ix < 0 || ix >= w) continue;
              const d = (rowStart + ix) * ci;
              const s = src + (i * kw + j) * ci;
              for (let c = 0; c < ci; c++) D[d + c] += C[s + c];
            }
          }
        }
      }
    }
    return out;
  } finally {
    cols.dispose();
  }
}

/**
 * Input channels below which the JS scatter beats the convolution form. Measured on the reference CNN (CPU time,
 * one thread): ci = 1 (first layer) scatter 12 ms vs convolution 22 ms; ci = 32 (second layer, [128,11,11,64] dy)
 * scatter 44 ms vs convolution 35 ms. With the SIMD scatter (simd/kernels.c) the product + scatter form wins at
 * every width (ci = 32: 40 ms vs 47 ms, ci = 1: 6 ms vs 21 ms) and runs whenever it is available.
 */
const SCATTER_BELOW_CHANNELS = 8;

/**
 * dy as the forward convolution's output shape: tfjs's kernels (cpu, the stock wasm one) read only the first
 * outHeight × outWidth positions of a larger dy (`tf.conv2dTranspose` does not check its size), so a larger dy is
 * cropped to them the same way; a smaller one is an error naming both shapes. Returns dy itself when it fits,
 * else a new tensor the caller disposes.
 */
export function fitDy(dyInfo: TensorInfo, filterInfo: TensorInfo, a: Attrs): { dy: TensorInfo; owned?: tf.Tensor } {
  const nchw = a.dataFormat === 'NCHW';
  const [n, d1, d2, d3] = a.inputShape;
  const info = tf.backend_util.computeConv2DInfo(
    nchw ? [n, d2, d3, d1] : [n, d1, d2, d3],
    filterInfo.shape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
  const [hAxis, wAxis] = nchw ? [2, 3] : [1, 2];
  const [h, w] = [dyInfo.shape[hAxis], dyInfo.shape[wAxis]];
  if (h === info.outHeight && w === info.outWidth) return { dy: dyInfo };
  if (h < info.outHeight || w < info.outWidth) {
    throw new Error(
      `Conv2DBackpropInput: dy is ${h}×${w} but input [${a.inputShape}] with this filter, stride and padding ` +
        `needs at least ${info.outHeight}×${info.outWidth}`,
    );
  }
  const size = [...dyInfo.shape];
  size[hAxis] = info.outHeight;
  size[wAxis] = info.outWidth;
  const owned = tf.slice(asTensor(dyInfo), [0, 0, 0, 0], size);
  return { dy: owned, owned };
}

const kernelFunc = (({ inputs, attrs, backend }) => {
  const a = attrs as unknown as Attrs;
  const filter = inputs.filter as TensorInfo;
  const { dy, owned } = fitDy(inputs.dy as TensorInfo, filter, a);
  try {
    const ci = a.dataFormat === 'NCHW' ? a.inputShape[1] : a.inputShape[3];
    const scatter = simdKernels(backend) !== undefined || ci < SCATTER_BELOW_CHANNELS;
    if (scatter && a.dataFormat !== 'NCHW' && dy.dtype === 'float32' && isHeapBackend(backend)) {
      return conv2dBackpropInputCol2im(dy, filter, a, backend);
    }
    return composed(() => conv2dBackpropInput(dy, filter, a));
  } finally {
    owned?.dispose();
  }
}) as KernelFunc;

/** Replaces wasm's scalar Conv2DBackpropInput: product + heap scatter (NHWC; SIMD, or JS for few channels), else a convolution. */
export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: WASM,
  kernelFunc,
};
