export { buildReferenceCnn } from './reference-cnn';
export { buildSmallResNet } from './small-resnet';
export type { SmallResNetOptions } from './small-resnet';
export { logitsFunction, outputKind, outputLayer } from './logits';
export type { LogitsFn, OutputKind } from './logits';
export { validateModelForDataset } from './validate';
export type { DatasetShape, ModelCheck } from './validate';
export {
  loadModel,
  loadModelFromBytes,
  saveModel,
  saveModelToBytes,
  ModelFileError,
  MODEL_JSON,
  WEIGHTS_BIN,
} from './io';
export type { ModelFiles } from './io';
