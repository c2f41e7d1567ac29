/** Facts about a diverged step; the activity layer maps them onto `Failure.Diverged`. */
export interface DivergenceInfo {
  epoch: number;
  batch: number;
  /** the batch loss (NaN, ±Infinity, or a finite value above the threshold) */
  loss: number;
  lr: number;
  reason: 'non-finite-loss' | 'loss-above-threshold' | 'non-finite-weights';
}

/**
 * Training stopped because a step diverged. No update from the bad step was kept: the trainer still holds the
 * last good state, and `checkpoint()` returns it (cursor at the batch that diverged).
 */
export class TrainingDivergedError extends Error {
  override readonly name = 'TrainingDivergedError';
  readonly epoch: number;
  readonly batch: number;
  readonly loss: number;
  readonly lr: number;
  readonly reason: DivergenceInfo['reason'];

  constructor(info: DivergenceInfo, maxLoss: number) {
    const why =
      info.reason === 'non-finite-loss'
        ? `loss=${info.loss}`
        : info.reason === 'loss-above-threshold'
          ? `loss=${info.loss} above divergence.maxLoss=${maxLoss}`
          : `the update made the weights non-finite (loss before the update ${info.loss})`;
    super(
      `training diverged at epoch ${info.epoch} batch ${info.batch}: ${why} (lr=${info.lr}); ` +
        'the bad update was not kept, checkpoint() returns the last good state',
    );
    this.epoch = info.epoch;
    this.batch = info.batch;
    this.loss = info.loss;
    this.lr = info.lr;
    this.reason = info.reason;
  }

  /** The facts as a plain object (for failure details). */
  get info(): DivergenceInfo {
    return this.toJSON();
  }

  toJSON(): DivergenceInfo {
    return { epoch: this.epoch, batch: this.batch, loss: this.loss, lr: this.lr, reason: this.reason };
  }
}

export type CheckpointProblem =
  'not-a-checkpoint' | 'version' | 'truncated' | 'corrupt' | 'config-mismatch' | 'model-mismatch' | 'data-mismatch';

/** A checkpoint that cannot be read, or does not fit the run it is resumed into. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
  constructor(
    readonly problem: CheckpointProblem,
    message: string,
  ) {
    super(message);
  }
}
