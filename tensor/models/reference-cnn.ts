import * as tf from '@tensorflow/tfjs';

/**
 * The reference CNN for 28×28×1 images in [0,1]: conv 3×3×32 relu → maxpool 2 → conv 3×3×64 relu → maxpool 2 →
 * flatten → dense 128 relu → dense logits. No normalisation inside, so an attack's ε is in pixel units.
 * Each call builds a fresh model the caller owns (dispose it).
 */
export function buildReferenceCnn(
  options: { inputShape?: [number, number, number]; numClasses?: number; seed?: number } = {},
): tf.LayersModel {
  const { inputShape = [28, 28, 1], numClasses = 10, seed } = options;
  const init = (k: number) =>
    seed === undefined ? 'glorotUniform' : tf.initializers.glorotUniform({ seed: seed + k });
  const model = tf.sequential({ name: 'reference_cnn' });
  model.add(
    tf.layers.conv2d({ inputShape, filters: 32, kernelSize: 3, activation: 'relu', kernelInitializer: init(1) }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', kernelInitializer: init(2) }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: init(3) }));
  model.add(tf.layers.dense({ units: numClasses, kernelInitializer: init(4) }));
  return model;
}
