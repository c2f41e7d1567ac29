export { batchSeed, evaluate } from './evaluate';
export type { AttackResult, EpsCurvePoint, EpsCurveSpec, EvalAttack, EvalReport, EvaluateOptions } from './evaluate';
export { sampleAdversarialExamples } from './samples';
export type { AdversarialSample, AdversarialSamples, SampleOptions } from './samples';
export { batchTensors, checkLabeledImages } from './data';
export type { LabeledImages } from './data';
export { customAttackEntry, runSuiteShard, SUITE_NAMES, suiteAttacks, SuiteVerificationError } from './suite';
export type { RunSuiteShardOptions, SuiteAttackEntry, SuiteName, SuiteProgress, SuiteShardState } from './suite';
export { accuracyOf, reduceSuite, ROBUST, wilson, WRONG_CLEAN } from './reduce';
export type { Accuracy, SuiteAttackSummary, SuiteClassSummary, SuiteResult, SuiteShardResult } from './reduce';
export {
  BLACK_BOX_ATTACKS,
  blackBoxFlag,
  epsMonotoneFlag,
  moreIterationsFlag,
  sanityPanel,
  singleStepFlag,
} from './sanity';
export type { SanityFlag, SanityFlagName, SanityOptions } from './sanity';
