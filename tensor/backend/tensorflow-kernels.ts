// Workarounds for the native backend (tfjs-node 4.22 on the TensorFlow 2.21 C library).
import * as tf from '@tensorflow/tfjs';

let registered = false;

/**
 * `Round` on int32 returns zeros on TensorFlow 2.21 (tfjs-core's own op spec fails there). Rounding an integer is
 * the identity, so int32 inputs go to `Identity`; float inputs keep TensorFlow's kernel. Idempotent.
 */
export function registerTensorflowWorkarounds(): void {
  if (registered) return;
  const round = tf.getKernel('Round', 'tensorflow');
  const identity = tf.getKernel('Identity', 'tensorflow');
  if (!round || !identity) return;
  registered = true;
  tf.unregisterKernel('Round', 'tensorflow');
  tf.registerKernel({
    ...round,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      return x.dtype === 'int32' ? identity.kernelFunc(args) : round.kernelFunc(args);
    },
  });
}
