import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { originalKernel, WASM } from './compose';

/** The part of the wasm backend that sharing needs: a reference count per data id. */
interface RefCountingBackend {
  incRef(dataId: object): void;
}

const canShare = (b: unknown): b is RefCountingBackend => typeof (b as RefCountingBackend)?.incRef === 'function';

/**
 * wasm's Identity (and Cast to the same dtype, which tfjs's Relu gradient calls on every step) copies the whole
 * buffer on the heap; tensors are immutable, so these share the input's data and bump its reference count, as the
 * cpu backend does (and as wasm's own Reshape does). Strings and real dtype changes run the original kernel.
 */
function sharing(kernelName: string, sameDtype: (x: TensorInfo, attrs: Record<string, unknown>) => boolean) {
  const original = originalKernel(kernelName);
  const kernelFunc = (({ inputs, attrs, backend }) => {
    const x = inputs.x as TensorInfo;
    if (x.dtype === 'string' || !sameDtype(x, (attrs ?? {}) as Record<string, unknown>) || !canShare(backend)) {
      return original.kernelFunc({ inputs, attrs, backend });
    }
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  }) as KernelFunc;
  return { kernelName, backendName: WASM, kernelFunc, setupFunc: original.setupFunc } as KernelConfig;
}

export const identityConfig = (): KernelConfig => sharing(tf.Identity, () => true);
export const castConfig = (): KernelConfig => sharing(tf.Cast, (x, attrs) => attrs.dtype === x.dtype);
