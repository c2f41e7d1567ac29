import { performance } from 'node:perf_hooks';
import { CancelledFailure, Context } from '@temporalio/activity';
import type * as tf from '@tensorflow/tfjs';
import { Failure, fail } from '../schemas/failures';
import type { Backend, TrainHeartbeat, TrainProgress } from '../schemas/payloads';
import type { ImageDataset } from '../tensor/data';
import { openDataParallel, threadsFor } from '../tensor/parallel';
import type { DataParallelPool } from '../tensor/parallel';
import {
  CheckpointError,
  Trainer,
  TrainingDivergedError,
  configHash,
  deserializeCheckpoint,
  parseTrainingConfig,
  shardsFor,
  trainLoop,
} from '../tensor/training';
import type { GuardSummary, LoopResult, TrainingCheckpoint, TrainingConfigInput } from '../tensor/training';
import type { ActivityDeps } from './deps';

/** Where one training phase of a run keeps its checkpoints (`<run prefix>/<phase>/checkpoints/`). */
export interface CheckpointPlace {
  bucket: string;
  prefix: string;
}

export interface TrainingRunOptions {
  deps: ActivityDeps;
  model: tf.LayersModel;
  train: ImageDataset;
  config: TrainingConfigInput;
  place: CheckpointPlace;
  /** Where earlier runs (a resumed run's predecessors) kept theirs, newest first: used when `place` has none. */
  earlierPlaces?: CheckpointPlace[];
  checkpointEvery: number;
  backend: Backend;
  /** The spec's `compute.threads`: the shards of each batch and the threads that train them (see `shardsFor`). */
  threads: number | 'auto';
  /** For progress signals and metrics. */
  workflowId: string;
  temporalRunId: string;
  /** Sends the workflow's progress signal (adversarial training does; the baseline's training does not). */
  reportProgress: boolean;
}

export interface TrainingRunResult {
  batches: number;
  epochs: number;
  checkpoints: number;
  checkpointKey: string;
  resumedFrom?: string;
  resumedAtBatch?: number;
  finalLoss?: number;
  seconds: number;
  /** The shards of each batch, and the threads of this attempt that trained them. */
  shards: number;
  threads: number;
  /** guarded runs: the guard's decisions and the probe of each epoch (0-based epochs, as the core counts) */
  guard?: GuardSummary & { probeRobust: number[] };
}

/** Checkpoint keys sort by their batch cursor: `ckpt-000000120.bin`. */
export const checkpointKey = (place: CheckpointPlace, cursor: number) =>
  `${place.prefix}ckpt-${String(cursor).padStart(9, '0')}.bin`;

/**
 * Every progress signal is an event in the run's history (which Temporal caps at 50k events): one every 10 s,
 * plus one per checkpoint, keeps a 12-hour run at a few thousand while the progress bar still moves.
 */
const PROGRESS_EVERY_MS = 10_000;

/**
 * Runs (or resumes) one training phase inside an activity: trains `model` in place batch by batch, heartbeats
 * every batch with where to resume from, writes a checkpoint every `checkpointEvery` batches and at each epoch's
 * end (keys named by batch cursor, so a rewrite after a crash lands on the same key), and stops between batches
 * when Temporal cancels the activity, after writing a last checkpoint.
 *
 * Resume: the newest checkpoint in the store that deserialises and belongs to this config wins. Heartbeat details
 * can be stale (throttled, or lost with a killed worker), so they are only a hint; the store is the truth.
 */
export async function runTraining(o: TrainingRunOptions): Promise<TrainingRunResult> {
  const { deps, place } = o;
  const started = performance.now();
  const here = threadsFor(o.backend, o.threads, deps.threads);
  // under `auto` a checkpoint of any shard count is this run's, when all else matches
  const configFor = (ck?: TrainingCheckpoint) =>
    withShards(o.config, shardsFor(o.threads, here, ck ? (ck.config.shards ?? 1) : undefined));
  let resume = await newestCheckpoint(deps, place, configFor);
  for (const earlier of o.earlierPlaces ?? []) resume ??= await newestCheckpoint(deps, earlier, configFor);
  const config = resume?.config ?? configFor();
  const shards = parseTrainingConfig(config).shards ?? 1;
  const threads = Math.min(here, shards);
  let pool: DataParallelPool | undefined;
  if (threads > 1) {
    try {
      pool = await openDataParallel(o.model, { workers: threads, backend: o.backend });
    } catch (err) {
      // the run goes on, on one thread, with the same result
      log(`training on one thread: ${threads} data-parallel threads did not start (${(err as Error).message})`);
    }
  }
  let trainer: Trainer;
  try {
    trainer = await Trainer.create({
      model: o.model,
      train: o.train,
      config,
      ...(resume ? { state: resume.bytes } : {}),
      ...(pool ? { runner: pool } : {}),
    });
  } catch (err) {
    await pool?.close();
    throw err;
  }
  const ctx = Context.current();
  let checkpoints = resume ? resume.index : 0;
  let lastKey = resume?.key;
  let lastSavedAt = resume ? trainer.completedBatches : -1;
  /** The batch cursor of `lastKey` (the resume point a retry would start from). */
  let lastCursor = resume?.cursor;
  let lastProgressAt = 0;
  let last: { loss: number; eps: number; examplesPerSec: number } | undefined;

  const progress = (): TrainProgress => ({
    epoch: trainer.cursor.epoch,
    epochs: trainer.config.epochs,
    batch: trainer.cursor.batch,
    batchesPerEpoch: trainer.batchesPerEpoch,
    epsilon: last?.eps ?? 0,
    loss: last?.loss ?? 0,
    imagesPerSecond: last?.examplesPerSec ?? 0,
    batchSize: trainer.config.batchSize,
    checkpoints,
    checkpointKey: lastKey ? `s3://${place.bucket}/${lastKey}` : undefined,
    checkpointCursor: lastCursor,
    backend: o.backend,
  });
  const heartbeat = () => {
    const details: TrainHeartbeat & { progress: TrainProgress } = {
      checkpointKey: lastKey,
      cursor: trainer.completedBatches,
      checkpoints,
      progress: progress(),
    };
    ctx.heartbeat(details);
  };
  const signal = async (force = false) => {
    if (!o.reportProgress || !deps.signalProgress) return;
    const now = performance.now();
    if (!force && now - lastProgressAt < PROGRESS_EVERY_MS) return;
    lastProgressAt = now;
    // A lost progress signal costs a stale progress bar, never the run.
    await deps.signalProgress(o.workflowId, o.temporalRunId, progress()).catch(() => undefined);
  };
  /** Writes the trainer's state under its batch cursor, once per cursor; `bytes` when the loop already made them. */
  const save = async (bytes?: Uint8Array) => {
    if (lastSavedAt === trainer.completedBatches && lastKey) return;
    const t0 = performance.now();
    const data = bytes ?? (await trainer.checkpoint());
    const key = checkpointKey(place, trainer.completedBatches);
    await deps.store.putBytes(place.bucket, key, data);
    deps.metrics?.checkpoint({ bytes: data.byteLength, seconds: (performance.now() - t0) / 1000 });
    checkpoints++;
    lastKey = key;
    lastSavedAt = trainer.completedBatches;
    lastCursor = trainer.completedBatches;
    heartbeat();
    await signal(true);
  };

  try {
    heartbeat();
    if (!trainer.done && !resume) await save();
    let loop: LoopResult;
    try {
      loop = await trainLoop(trainer, {
        signal: ctx.cancellationSignal,
        checkpointEvery: o.checkpointEvery,
        onStep: async (r) => {
          last = { loss: r.loss, eps: r.eps, examplesPerSec: r.examplesPerSec };
          deps.metrics?.trainStep({
            workflowId: o.workflowId,
            epoch: r.epoch,
            batch: r.batch,
            epsilon: r.eps,
            loss: r.loss,
            examplesPerSec: r.examplesPerSec,
            examples: r.examples,
          });
          heartbeat();
          await signal();
        },
        onCheckpoint: (bytes) => save(bytes),
      });
    } catch (err) {
      if (err instanceof TrainingDivergedError) {
        await save();
        throw fail(
          Failure.Diverged,
          `${err.message}; the last good state is checkpoint ${lastKey} (lower training.learningRate or raise ` +
            'training.maxLoss, then run again)',
          { ...err.toJSON(), checkpointKey: lastKey },
        );
      }
      throw err;
    }
    // The loop wrote a last checkpoint before it returned.
    if (loop.stopped === 'aborted') throw new CancelledFailure('training cancelled between batches', [progress()]);
    await save();
    return {
      batches: trainer.completedBatches,
      epochs: trainer.config.epochs,
      checkpoints,
      checkpointKey: lastKey as string,
      resumedFrom: resume?.key,
      resumedAtBatch: resume?.cursor,
      finalLoss: last?.loss,
      seconds: (performance.now() - started) / 1000,
      shards,
      threads: pool?.size ?? 1,
      ...(trainer.probeCount > 0 ? { guard: { ...trainer.guard, probeRobust: probeHistory(trainer) } } : {}),
    };
  } finally {
    trainer.dispose();
    await pool?.close();
  }
}

/** `config` cut into `shards` per batch (absent for one, so such configs keep the hash they had before shards). */
function withShards(config: TrainingConfigInput, shards: number): TrainingConfigInput {
  const { shards: _, ...rest } = config;
  return shards > 1 ? { ...rest, shards } : rest;
}

/**
 * The newest usable checkpoint of a phase: highest batch cursor first; one that does not deserialise or was written
 * under another config is skipped (and said so in the log).
 */
async function newestCheckpoint(
  deps: ActivityDeps,
  place: CheckpointPlace,
  configFor: (ck: TrainingCheckpoint) => TrainingConfigInput,
): Promise<{ key: string; bytes: Uint8Array; cursor: number; index: number; config: TrainingConfigInput } | undefined> {
  const entries = (await deps.store.list(place.bucket, place.prefix)).filter((e) => /ckpt-\d{9}\.bin$/.test(e.key));
  entries.sort((a, b) => (a.key < b.key ? 1 : -1));
  for (const [i, e] of entries.entries()) {
    const bytes = new Uint8Array(await deps.store.getBytes(place.bucket, e.key));
    try {
      const ck = deserializeCheckpoint(bytes);
      const config = configFor(ck);
      const probe = configHash(parseTrainingConfig(config));
      if (ck.configHash !== probe) {
        log(`skipping checkpoint ${e.key}: written under config ${ck.configHash}, this run is ${probe}`);
        continue;
      }
      const cursor = Number(/ckpt-(\d{9})\.bin$/.exec(e.key)?.[1]);
      return { key: e.key, bytes, cursor, index: entries.length - i, config };
    } catch (err) {
      if (err instanceof CheckpointError) {
        log(`skipping checkpoint ${e.key}: ${err.message}`);
        continue;
      }
      throw err;
    }
  }
  return undefined;
}

/** The guard's probe robust accuracy: the starting weights, then each epoch. */
function probeHistory(trainer: Trainer): number[] {
  const start = trainer.guard.start;
  return [...(start ? [start.robust] : []), ...trainer.epochHistory.flatMap((h) => (h.probe ? [h.probe.robust] : []))];
}

function log(message: string): void {
  Context.current().log.warn(message);
}
