export {
  canonicalJson,
  configHash,
  EpsilonSchedule,
  isAdversarial,
  LrSchedule,
  parseTrainingConfig,
  TrainingAttack,
  TrainingConfig,
} from './config';
export type { TrainingConfigInput } from './config';
export { epsilonAt, learningRateAt, pgdStepSize } from './schedules';
export type { LrAt } from './schedules';
export { CHECKPOINT_FORMAT_VERSION, deserializeCheckpoint, serializeCheckpoint } from './checkpoint';
export type {
  DataShape,
  DeserializeOptions,
  EpochRunning,
  EpochSummary,
  NamedArray,
  TrainingCheckpoint,
} from './checkpoint';
export { CheckpointError, TrainingDivergedError } from './errors';
export type { CheckpointProblem, DivergenceInfo } from './errors';
export { batchSeed, Trainer } from './trainer';
export type { Cursor, StepResult, TrainerOptions } from './trainer';
export { trainLoop } from './loop';
export type { LoopOptions, LoopResult } from './loop';
export { meanKl, tradesAdversary } from './trades';
export type { TradesAttack } from './trades';
