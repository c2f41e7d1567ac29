export {
  canonicalJson,
  configHash,
  betaOf,
  EpsilonSchedule,
  isAdversarial,
  LrSchedule,
  migrateTrainingConfig,
  parseTrainingConfig,
  Recipe,
  RECIPE_DEFAULTS,
  recipeOf,
  stepFractionOf,
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
  GuardState,
  NamedArray,
  ProbeResult,
  TrainingCheckpoint,
} from './checkpoint';
export { CheckpointError, TrainingDivergedError } from './errors';
export type { CheckpointProblem, DivergenceInfo } from './errors';
export { batchSeed, Trainer } from './trainer';
export type { Cursor, GuardSummary, StepResult, TrainerOptions } from './trainer';
export { trainLoop } from './loop';
export type { LoopOptions, LoopResult } from './loop';
export { martLoss } from './mart';
export { meanKl, tradesAdversary } from './trades';
export type { TradesAttack } from './trades';
export { shardsFor } from './shards';
