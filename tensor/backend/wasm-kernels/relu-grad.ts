import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { RELU_GRAD } from '../relu-grad';
import { asTensor, composed, isHeapBackend, WASM } from './compose';
import { simdKernels } from './simd';

const kernelFunc = (({ inputs, backend }) => {
  const dy = inputs.dy as TensorInfo;
  const x = inputs.x as TensorInfo;
  const simd = simdKernels(backend);
  if (simd && isHeapBackend(backend) && dy.dtype === 'float32' && x.dtype === 'float32') {
    const out = backend.makeOutput([...x.shape], 'float32');
    simd.reluGrad(simd.ptr(dy), simd.ptr(x), simd.ptr(out), tf.util.sizeFromShape(x.shape));
    return out;
  }
  return composed(() => tf.mul(asTensor(dy), tf.cast(tf.step(asTensor(x)), 'float32')));
}) as KernelFunc;

/** `RELU_GRAD` on wasm: the SIMD loop, NaN propagating like tfjs's `dy · step(x)`. */
export const reluGradConfig: KernelConfig = { kernelName: RELU_GRAD, backendName: WASM, kernelFunc };
