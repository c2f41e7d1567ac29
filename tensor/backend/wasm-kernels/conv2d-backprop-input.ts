import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { asTensor, composed, padOrCrop, WASM } from './compose';

interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * dx = conv2d(dilate(dy) padded by (k−1−pad), flip(W) with in/out channels swapped), one stride-1 VALID
 * convolution on XNNPACK instead of the backend's scalar loop. Stride s dilates dy by inserting s−1 zeros.
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
    const padTop = kh - 1 - info.padInfo.top;
    const padLeft = kw - 1 - info.padInfo.left;
    d = padOrCrop(d, 1, padTop, h + kh - 1 - padTop - oh * sh);
    d = padOrCrop(d, 2, padLeft, w + kw - 1 - padLeft - ow * sw);
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    const dx = tf.conv2d(d as tf.Tensor4D, flipped, 1, 'valid');
    return nchw ? tf.transpose(dx, [0, 3, 1, 2]) : dx;
  });
}

const kernelFunc = (({ inputs, attrs }) =>
  composed(() =>
    conv2dBackpropInput(inputs.dy as TensorInfo, inputs.filter as TensorInfo, attrs as unknown as Attrs),
  )) as KernelFunc;

/** Replaces wasm's scalar Conv2DBackpropInput with an XNNPACK convolution. */
export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: WASM,
  kernelFunc,
};
