import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { WASM } from './compose';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input';
import { addConfig, maximumConfig, minimumConfig } from './elementwise';
import { castConfig, identityConfig } from './identity';
import { batchMatMulConfig, fusedMatMulConfig } from './mat-mul';
import { maxPoolGradConfig } from './max-pool-grad';
import { RELU_GRAD, registerReluGradient } from '../relu-grad';
import { reluGradConfig } from './relu-grad';
import { sumConfig } from './sum';

export { conv2dBackpropFilter } from './conv2d-backprop-filter';
export { conv2dBackpropInput, conv2dBackpropInputCol2im } from './conv2d-backprop-input';
export { maxPoolGrad2x2, maxPoolGrad2x2Heap } from './max-pool-grad';
export { sumLeadingAxes, sumLeadingAxesHeap } from './sum';

/** Kernel names this module adds to or replaces on the wasm backend. */
export const WASM_TRAINING_KERNELS = [
  tf.Conv2DBackpropFilter,
  tf.Conv2DBackpropInput,
  tf.MaxPoolGrad,
  tf.BatchMatMul,
  tf._FusedMatMul,
  tf.Sum,
  tf.Identity,
  tf.Cast,
  RELU_GRAD,
  tf.Maximum,
  tf.Minimum,
  tf.Add,
] as const;

let registered = false;
const originals = new Map<string, KernelConfig>();

/** The wasm backend's own kernel that `registerWasmTrainingKernels()` replaced, if any (for tests and benches). */
export function originalWasmKernel(kernelName: string): KernelConfig | undefined {
  return originals.get(kernelName);
}

/**
 * Registers the training kernels on the wasm backend: adds Conv2DBackpropFilter and replaces the scalar
 * Conv2DBackpropInput, MaxPoolGrad and transposed MatMul paths with compositions of XNNPACK-backed kernels and
 * the SIMD kernels of simd/kernels.c, and routes the ReLU gradient through a one-pass kernel on wasm.
 * Needs `@tensorflow/tfjs-backend-wasm` imported (its kernels registered); idempotent. Wrapped originals keep
 * their setupFunc, so registering before or after the backend initialises both work.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const configs: KernelConfig[] = [
    conv2dBackpropFilterConfig,
    conv2dBackpropInputConfig,
    maxPoolGradConfig(),
    batchMatMulConfig(),
    fusedMatMulConfig(),
    sumConfig(),
    identityConfig(),
    castConfig(),
    reluGradConfig,
    maximumConfig(),
    minimumConfig(),
    addConfig(),
  ];
  for (const config of configs) {
    const existing = tf.getKernel(config.kernelName, WASM);
    if (existing != null) {
      originals.set(config.kernelName, existing);
      tf.unregisterKernel(config.kernelName, WASM);
    }
    tf.registerKernel(config);
  }
  registerReluGradient();
  registered = true;
}
