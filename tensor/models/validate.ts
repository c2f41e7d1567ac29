import type * as tf from '@tensorflow/tfjs';
import { outputKind } from './logits';
import type { OutputKind } from './logits';

/** What a dataset's images and labels look like, as far as a model cares. */
export interface DatasetShape {
  height: number;
  width: number;
  channels: number;
  numClasses: number;
}

/** The outcome of {@link validateModelForDataset}. */
export interface ModelCheck {
  /** 'probabilities' when the last layer ends in a softmax; attacks then use the scores before it. */
  output: OutputKind;
  /** Things worth telling a person that do not stop the run. */
  warnings: string[];
}

const fmt = (shape: readonly (number | null)[]) => `[${shape.map((d) => (d === null ? '?' : d)).join(',')}]`;

/**
 * Checks that `model` takes images of the dataset's shape and returns one score per class. Throws an `Error`
 * whose message carries both shapes (e.g. "model expects input [28,28,1] but dataset images are [32,32,3]").
 * A model that ends in a softmax is accepted with a warning: `logitsFunction` strips the softmax for attacks.
 */
export function validateModelForDataset(model: tf.LayersModel, data: DatasetShape): ModelCheck {
  const name = model.name ? `model '${model.name}'` : 'model';
  if (model.inputs.length !== 1) throw new Error(`${name} must have exactly 1 input, it has ${model.inputs.length}`);
  if (model.outputs.length !== 1) {
    throw new Error(`${name} must have exactly 1 output, it has ${model.outputs.length}`);
  }
  const want = [data.height, data.width, data.channels];
  const inShape = model.inputs[0].shape.slice(1);
  if (inShape.length !== 3 || inShape.some((d, i) => d !== null && d !== want[i])) {
    throw new Error(`${name} expects input ${fmt(inShape)} but dataset images are ${fmt(want)}`);
  }
  const outShape = model.outputs[0].shape.slice(1);
  if (outShape.length !== 1 || (outShape[0] !== null && outShape[0] !== data.numClasses)) {
    throw new Error(
      `${name} outputs ${fmt(outShape)} per image but the dataset has ${data.numClasses} classes ` +
        `(expected output [${data.numClasses}])`,
    );
  }
  const output = outputKind(model);
  const warnings: string[] = [];
  if (output === 'probabilities') {
    warnings.push(
      `${name} ends in a softmax and outputs probabilities; attacks and losses use the scores before the softmax`,
    );
  }
  if (inShape.some((d) => d === null)) {
    warnings.push(`${name} accepts input ${fmt(inShape)}; unknown dimensions were not checked`);
  }
  return { output, warnings };
}
