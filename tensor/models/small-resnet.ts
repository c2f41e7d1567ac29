import * as tf from '@tensorflow/tfjs';

/** Options of {@link buildSmallResNet}. */
export interface SmallResNetOptions {
  /** Image shape [height, width, channels]. Default [32, 32, 3]. */
  inputShape?: [number, number, number];
  /** Number of classes (size of the logits). Default 10. */
  numClasses?: number;
  /** Filters per stage; every stage after the first halves the resolution. Default [16, 32, 64]. */
  widths?: number[];
  /** Residual blocks per stage. Default 1. */
  blocksPerStage?: number;
  /** Seed for the kernel initialisers, so two builds with the same seed are identical. Default: unseeded. */
  seed?: number;
}

/**
 * A small pre-activation-free ResNet for images in [0,1]: conv 3×3 stem → stages of residual blocks
 * (conv 3×3 relu → conv 3×3, added to the shortcut, relu; a 1×1 stride-2 projection where the shape changes) →
 * global average pooling → dense logits. No batch norm, so training and inference mode compute the same function
 * and an attack's gradients do not depend on the mode. Each call builds a fresh model the caller owns (dispose it).
 */
export function buildSmallResNet(options: SmallResNetOptions = {}): tf.LayersModel {
  const { inputShape = [32, 32, 3], numClasses = 10, widths = [16, 32, 64], blocksPerStage = 1, seed } = options;
  if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`inputShape must be [height, width, channels] of positive integers, got [${inputShape}]`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`numClasses must be ≥ 2, got ${numClasses}`);
  if (widths.length < 1) throw new Error('widths must name at least one stage');
  let k = 0;
  const init = () => (seed === undefined ? 'heNormal' : tf.initializers.heNormal({ seed: seed + ++k }));
  const conv = (filters: number, kernelSize: number, strides: number, activation: 'relu' | 'linear', name: string) =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding: 'same', activation, kernelInitializer: init(), name });

  const input = tf.input({ shape: inputShape, name: 'image' });
  let h = conv(widths[0], 3, 1, 'relu', 'stem').apply(input) as tf.SymbolicTensor;
  let channels = widths[0];
  widths.forEach((filters, stage) => {
    for (let b = 0; b < blocksPerStage; b++) {
      const strides = stage > 0 && b === 0 ? 2 : 1;
      const name = `s${stage + 1}b${b + 1}`;
      let y = conv(filters, 3, strides, 'relu', `${name}_conv1`).apply(h) as tf.SymbolicTensor;
      y = conv(filters, 3, 1, 'linear', `${name}_conv2`).apply(y) as tf.SymbolicTensor;
      const shortcut =
        strides !== 1 || channels !== filters
          ? (conv(filters, 1, strides, 'linear', `${name}_proj`).apply(h) as tf.SymbolicTensor)
          : h;
      const sum = tf.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as tf.SymbolicTensor;
      h = tf.layers.activation({ activation: 'relu', name: `${name}_relu` }).apply(sum) as tf.SymbolicTensor;
      channels = filters;
    }
  });
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(h) as tf.SymbolicTensor;
  const logits = tf.layers
    .dense({
      units: numClasses,
      kernelInitializer: seed === undefined ? 'glorotUniform' : tf.initializers.glorotUniform({ seed: seed + ++k }),
      name: 'logits',
    })
    .apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'small_resnet' });
}
