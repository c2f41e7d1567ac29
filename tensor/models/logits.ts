import * as tf from '@tensorflow/tfjs';

/** What a classifier's single output holds. */
export type OutputKind = 'logits' | 'probabilities';

/** A forward pass to logits, in inference mode. Returns a new tensor; inside `tf.tidy`/`tf.grad` it is tracked. */
export type LogitsFn = (x: tf.Tensor4D) => tf.Tensor2D;

type SoftmaxHead =
  { kind: 'activation'; layer: { activation: unknown } } | { kind: 'layer'; layer: { softmax: unknown } };

/** The layer that produces the model's (first) output. */
export function outputLayer(model: tf.LayersModel): tf.layers.Layer {
  const source = model.outputs[0]?.sourceLayer;
  return (source as tf.layers.Layer | undefined) ?? model.layers[model.layers.length - 1];
}

function softmaxHead(model: tf.LayersModel): SoftmaxHead | undefined {
  const layer = outputLayer(model) as unknown as {
    activation?: { getClassName?: () => string } | null;
    softmax?: unknown;
    getClassName(): string;
  };
  if (layer.getClassName() === 'Softmax' && typeof layer.softmax === 'function') {
    return { kind: 'layer', layer: layer as { softmax: unknown } };
  }
  if (layer.activation?.getClassName?.() === 'softmax') {
    return { kind: 'activation', layer: layer as { activation: unknown } };
  }
  return undefined;
}

/**
 * Whether the model's last layer ends in a softmax (`activation: 'softmax'` on a Dense/Conv/Activation layer, or a
 * Softmax layer): then its output holds probabilities, not logits.
 */
export function outputKind(model: tf.LayersModel): OutputKind {
  return softmaxHead(model) ? 'probabilities' : 'logits';
}

let linear: unknown;
function linearActivation(): unknown {
  // tfjs-layers does not export its activation objects; an unbuilt Dense layer (no weights) carries a Linear one.
  linear ??= (tf.layers.dense({ units: 1 }) as unknown as { activation: unknown }).activation;
  return linear;
}

/**
 * A function from images to logits for `model`, running `model.apply(x, { training: false })`.
 *
 * For a model whose last layer ends in a softmax the function returns the scores *before* the softmax: for the
 * duration of the (synchronous) call the last layer's softmax is swapped for the identity, so the weights stay
 * shared with the model (training it keeps the function current) and attack gradients do not vanish in a
 * saturated softmax. This relies on tfjs-layers 4.x internals (`layer.activation`, `Softmax.softmax`); the unit
 * tests pin it. The returned tensor is new; the caller (or the enclosing tidy) owns it.
 */
export function logitsFunction(model: tf.LayersModel, options: { training?: boolean } = {}): LogitsFn {
  const { training = false } = options;
  const forward = (x: tf.Tensor4D) => model.apply(x, { training }) as tf.Tensor2D;
  const head = softmaxHead(model);
  if (!head) return forward;
  if (head.kind === 'activation') {
    const layer = head.layer;
    return (x) => {
      const saved = layer.activation;
      layer.activation = linearActivation();
      try {
        return forward(x);
      } finally {
        layer.activation = saved;
      }
    };
  }
  const layer = head.layer;
  const identity = (t: tf.Tensor) => t;
  return (x) => {
    const saved = layer.softmax;
    layer.softmax = identity;
    try {
      return forward(x);
    } finally {
      layer.softmax = saved;
    }
  };
}
