// Kernels and workarounds for the native backend (tfjs-node 4.22 on the TensorFlow 2.21 C library).
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { RELU_GRAD, registerReluGradient } from './relu-grad';

const TENSORFLOW = 'tensorflow';

/** What this module uses of tfjs-node's backend: one TensorFlow eager op, and the addon's attribute constants. */
interface NodeBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(
    name: string,
    attrs: { name: string; type: number; value: number }[],
    inputs: TensorInfo[],
  ): tf.Tensor;
}

/**
 * `RELU_GRAD` as TensorFlow's own `ReluGrad` op (x > 0 ? dy : 0, one fused pass). tfjs's gradient runs `Step` (five
 * TensorFlow ops: IsNan, Greater, two Fills and Select), a cast and a multiply: a third of a PGD step on the
 * reference CNN. NaN in x gives 0 here where tfjs's composition gives NaN; a NaN activation has already made the
 * loss NaN, which training reports as divergence.
 */
const reluGrad = (({ inputs, backend }) => {
  const node = backend as unknown as NodeBackend;
  const attrs = [{ name: 'T', type: node.binding.TF_ATTR_TYPE, value: node.binding.TF_FLOAT }];
  return node.executeSingleOutput('ReluGrad', attrs, [inputs.dy as TensorInfo, inputs.x as TensorInfo]);
}) as KernelFunc;

let registered = false;

/**
 * Registers our kernels on the tensorflow backend (tfjs-node loaded first):
 * - `Round` on int32 returns zeros on TensorFlow 2.21 (tfjs-core's own op spec fails there). Rounding an integer
 *   is the identity, so int32 inputs go to `Identity`; float inputs keep TensorFlow's kernel;
 * - the ReLU gradient as TensorFlow's `ReluGrad` (see `reluGrad`).
 * Idempotent.
 */
export function registerTensorflowKernels(): void {
  if (registered) return;
  const round = tf.getKernel('Round', TENSORFLOW);
  const identity = tf.getKernel('Identity', TENSORFLOW);
  if (!round || !identity) return;
  registered = true;
  tf.unregisterKernel('Round', TENSORFLOW);
  tf.registerKernel({
    ...round,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      return x.dtype === 'int32' ? identity.kernelFunc(args) : round.kernelFunc(args);
    },
  });
  if (tf.getKernel(RELU_GRAD, TENSORFLOW) == null) {
    tf.registerKernel({ kernelName: RELU_GRAD, backendName: TENSORFLOW, kernelFunc: reluGrad });
  }
  registerReluGradient();
}
