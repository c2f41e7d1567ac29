import { eventLoopYielder } from '../event-loop';
import type { StepResult, Trainer } from './trainer';

export interface LoopOptions {
  /** Checked between batches; when aborted the loop returns (after a checkpoint, if `onCheckpoint` is set). */
  signal?: AbortSignal;
  /** Checkpoint every this many batches (and at every epoch end); default: only at epoch ends. */
  checkpointEvery?: number;
  /** Called after every batch (heartbeat here). */
  onStep?: (r: StepResult) => void | Promise<void>;
  /** Receives checkpoint bytes at the points above and when stopping early (never twice for one cursor). */
  onCheckpoint?: (bytes: Uint8Array, at: { epoch: number; batch: number }) => void | Promise<void>;
  /** Stop after this many batches (for time-boxed slices of a run); default: run to the end. */
  maxBatches?: number;
}

export interface LoopResult {
  stopped: 'done' | 'aborted' | 'max-batches';
  batches: number;
}

/**
 * Drives `trainer` batch by batch until it is done, `signal` aborts or `maxBatches` ran. A diverged step throws
 * `TrainingDivergedError`; the trainer still holds (and can checkpoint) the last good state.
 */
export async function trainLoop(trainer: Trainer, options: LoopOptions = {}): Promise<LoopResult> {
  const { signal, checkpointEvery, onStep, onCheckpoint, maxBatches = Infinity } = options;
  if (checkpointEvery !== undefined && (!Number.isInteger(checkpointEvery) || checkpointEvery < 1)) {
    throw new Error(`checkpointEvery must be a positive integer, got ${checkpointEvery}`);
  }
  let batches = 0;
  let savedAt = -1;
  const yieldNow = eventLoopYielder();
  const save = async () => {
    if (!onCheckpoint || savedAt === trainer.completedBatches) return;
    await onCheckpoint(await trainer.checkpoint(), trainer.cursor);
    savedAt = trainer.completedBatches;
  };
  while (!trainer.done) {
    if (signal?.aborted) {
      await save();
      return { stopped: 'aborted', batches };
    }
    if (batches >= maxBatches) {
      await save();
      return { stopped: 'max-batches', batches };
    }
    const r = await trainer.step();
    batches++;
    await yieldNow();
    if (onStep) await onStep(r);
    if (r.epochSummary || (checkpointEvery !== undefined && trainer.completedBatches % checkpointEvery === 0)) {
      await save();
    }
  }
  return { stopped: 'done', batches };
}
