/**
 * The failure vocabulary of tempered: every permanent problem has a type from this list, so workflows, the CLI
 * and retry policies branch on `err.cause.type`, never on message text.
 *
 * Only `@temporalio/common` is imported here, so workflows and activities can both use this module.
 */
import { ApplicationFailure } from '@temporalio/common';

export const Failure = {
  /** The spec does not validate; details carry every error line. */
  InvalidSpec: 'InvalidSpec',
  /** A dataset file's SHA-256 differs from the one the spec pins. */
  ChecksumMismatch: 'ChecksumMismatch',
  /** A dataset file cannot be decoded (bad magic number, truncated, label/image counts differ). */
  CorruptDataset: 'CorruptDataset',
  /** The dataset (or the requested subset) exceeds what the worker is allowed to load. */
  DatasetTooLarge: 'DatasetTooLarge',
  /** A dataset, model or artifact named by the spec does not exist. */
  NotFound: 'NotFound',
  /** A model cannot be loaded or does not fit the dataset (input shape, class count). */
  InvalidModel: 'InvalidModel',
  /** Training loss became NaN/Infinity or exceeded `training.maxLoss`. */
  Diverged: 'Diverged',
  /**
   * The guard's probe robust accuracy fell by more than `training.probe.maxDrop` in one epoch and
   * `training.onOverfitting` is `fail` (with `warn` the run goes on from the epoch before).
   */
  CatastrophicOverfitting: 'CatastrophicOverfitting',
  /** The requested compute backend is not available on the worker (e.g. tensorflow-gpu without a GPU). */
  BackendUnavailable: 'BackendUnavailable',
  /** The object store refused the credentials or the bucket policy forbids the operation. */
  AccessDenied: 'AccessDenied',
  /** A long activity failed `compute.maxAttemptsWithoutProgress` times in a row without advancing its checkpoint. */
  NoProgress: 'NoProgress',
} as const;
export type Failure = (typeof Failure)[keyof typeof Failure];

/** Every failure type: the permanent ones a retry cannot fix. */
export const allFailures: readonly Failure[] = Object.values(Failure);

/**
 * A permanent failure: `ApplicationFailure.nonRetryable` with a type from the vocabulary. The message states
 * the facts a person needs; `details` carries them for machines.
 */
export const fail = (type: Failure, message: string, details?: unknown): ApplicationFailure =>
  ApplicationFailure.nonRetryable(message, type, ...(details === undefined ? [] : [details]));

/** True when `type` is one of the vocabulary's types. */
export const isFailure = (type: unknown): type is Failure =>
  typeof type === 'string' && (allFailures as readonly string[]).includes(type);
