export { batchSeed, evaluate } from './evaluate';
export type { AttackResult, EpsCurvePoint, EpsCurveSpec, EvalAttack, EvalReport, EvaluateOptions } from './evaluate';
export { sampleAdversarialExamples } from './samples';
export type { AdversarialSample, AdversarialSamples, SampleOptions } from './samples';
export { batchTensors, checkLabeledImages } from './data';
export type { LabeledImages } from './data';
