import { createHash } from 'node:crypto';
import type { RngState } from '../random';
import type { TrainingConfig } from './config';
import { configHash, migrateTrainingConfig, TrainingConfig as TrainingConfigSchema } from './config';
import { CheckpointError } from './errors';

/**
 * The full state of a training run at a batch boundary, as plain values (no tensors): serialising it and
 * resuming from it continues the run bit for bit.
 *
 * Binary layout (little-endian), `serializeCheckpoint`:
 *   8 bytes magic "TMPRCKPT" | u32 format version | u32 header length H | H bytes UTF-8 JSON header |
 *   zero padding to a multiple of 8 | tensor data (each array at header.arrays[i].offset, 8-aligned) |
 *   32 bytes SHA-256 of everything before it.
 */
export const CHECKPOINT_FORMAT_VERSION = 1;
const MAGIC = 'TMPRCKPT';
const DIGEST_BYTES = 32;

export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface EpochSummary {
  epoch: number;
  batches: number;
  examples: number;
  meanLoss: number;
  meanEps: number;
  /** the learning rate of the epoch's last optimizer step */
  lastLr: number;
  seconds: number;
  /** the guard's probe after this epoch (guarded adversarial runs only) */
  probe?: ProbeResult;
}

/** Accuracy on the guard's held-out images, clean and under PGD at `eps`. */
export interface ProbeResult {
  eps: number;
  clean: number;
  robust: number;
}

/** The guard's memory (epochs 0-based): the revert point, the best epoch, what stopped the run. */
export interface GuardState {
  /** the last accepted epoch: its probe robust accuracy and weights (`model.weights` order) */
  previous?: { epoch: number; robust: number; weights: NamedArray[] };
  /** the accepted epoch with the best probe robust accuracy (the later one on a tie) */
  best?: { epoch: number; robust: number; weights: NamedArray[] };
  /** set when the probe fell by more than guard.maxDrop: training stopped and the model went back to `previous` */
  overfitting?: { epoch: number; robust: number; previousEpoch: number; previousRobust: number };
  /** once done: the epoch whose weights the model holds (−1: the starting weights) */
  finalEpoch?: number;
  /** the probe of the starting weights (taken before the first batch; they are epoch −1 above) */
  start?: ProbeResult;
}

/** Running sums of the epoch in progress. */
export interface EpochRunning {
  batches: number;
  examples: number;
  lossSum: number;
  epsSum: number;
  lastLr: number;
  seconds: number;
}

export interface DataShape {
  count: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
}

export interface TrainingCheckpoint {
  configHash: string;
  config: TrainingConfig;
  /** the next batch to run; epoch === config.epochs when done */
  cursor: { epoch: number; batch: number };
  done: boolean;
  optimizerSteps: number;
  examplesSeen: number;
  /** the run's RNG after drawing the current epoch's order */
  rngState: RngState;
  /** the permutation of the current epoch (empty when done) */
  order: Int32Array;
  data: DataShape;
  /** the model's weights, in `model.weights` order */
  weights: NamedArray[];
  optimizer: {
    kind: 'adam' | 'sgd' | 'momentum';
    iterations: number;
    /** Adam's running β1^t and β2^t, as float32 values (not recomputable bit for bit from `iterations`) */
    accBeta1?: number;
    accBeta2?: number;
    /** slot variables in the optimizer's own order (Adam: all m, then all v; momentum: accumulations) */
    slots: NamedArray[];
  };
  /** gradients summed over the micro-batches of an optimizer step not yet taken */
  accumulation: { count: number; grads: NamedArray[] };
  metrics: { history: EpochSummary[]; current: EpochRunning };
  /** guarded runs: the guard's memory (its weights travel as the array groups "previous" and "best") */
  guard?: GuardState;
}

type ArrayGroup = 'weights' | 'slots' | 'grads' | 'order' | 'previous' | 'best';
interface ArrayEntry {
  group: ArrayGroup;
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  offset: number;
  length: number;
}
type HeaderGuard = {
  start?: ProbeResult;
  previous?: Omit<NonNullable<GuardState['previous']>, 'weights'>;
  best?: Omit<NonNullable<GuardState['best']>, 'weights'>;
  overfitting?: GuardState['overfitting'];
  finalEpoch?: number;
};
type Header = Omit<TrainingCheckpoint, 'order' | 'weights' | 'optimizer' | 'accumulation' | 'guard'> & {
  kind: 'tempered.training-checkpoint';
  guard?: HeaderGuard;
  optimizer: Omit<TrainingCheckpoint['optimizer'], 'slots'>;
  accumulation: { count: number };
  arrays: ArrayEntry[];
};

const align8 = (n: number) => (n + 7) & ~7;

/** Serialises a checkpoint into the compact binary format above. Deterministic: the same state gives the same bytes. */
export function serializeCheckpoint(ck: TrainingCheckpoint): Uint8Array {
  const arrays: { entry: ArrayEntry; bytes: Uint8Array }[] = [];
  let offset = 0;
  const add = (group: ArrayGroup, name: string, shape: number[], data: Float32Array | Int32Array) => {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new Error(
        `checkpoint array ${group}/${name}: shape [${shape}] holds ${size} values but data has ${data.length}`,
      );
    }
    const dtype = data instanceof Int32Array ? 'int32' : 'float32';
    arrays.push({
      entry: { group, name, shape: [...shape], dtype, offset, length: data.length },
      bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    offset = align8(offset + data.byteLength);
  };
  for (const w of ck.weights) add('weights', w.name, w.shape, w.data);
  for (const s of ck.optimizer.slots) add('slots', s.name, s.shape, s.data);
  for (const g of ck.accumulation.grads) add('grads', g.name, g.shape, g.data);
  add('order', 'order', [ck.order.length], ck.order);
  for (const w of ck.guard?.previous?.weights ?? []) add('previous', w.name, w.shape, w.data);
  for (const w of ck.guard?.best?.weights ?? []) add('best', w.name, w.shape, w.data);

  const { slots: _slots, ...optimizer } = ck.optimizer;
  const header: Header = {
    kind: 'tempered.training-checkpoint',
    configHash: ck.configHash,
    config: ck.config,
    cursor: ck.cursor,
    done: ck.done,
    optimizerSteps: ck.optimizerSteps,
    examplesSeen: ck.examplesSeen,
    rngState: ck.rngState,
    data: ck.data,
    optimizer,
    accumulation: { count: ck.accumulation.count },
    metrics: ck.metrics,
    ...(ck.guard ? { guard: headerGuard(ck.guard) } : {}),
    arrays: arrays.map((a) => a.entry),
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = align8(16 + headerBytes.length);
  const total = dataStart + offset + DIGEST_BYTES;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, CHECKPOINT_FORMAT_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  out.set(headerBytes, 16);
  for (const a of arrays) out.set(a.bytes, dataStart + a.entry.offset);
  out.set(sha256(out.subarray(0, total - DIGEST_BYTES)), total - DIGEST_BYTES);
  return out;
}

export interface DeserializeOptions {
  /** when set, a checkpoint written under another config hash is refused with problem 'config-mismatch' */
  expectConfigHash?: string;
}

/** Reads bytes written by `serializeCheckpoint`. Throws `CheckpointError` naming what is wrong. */
export function deserializeCheckpoint(bytes: Uint8Array, options: DeserializeOptions = {}): TrainingCheckpoint {
  if (!(bytes instanceof Uint8Array)) throw new CheckpointError('not-a-checkpoint', 'checkpoint must be a Uint8Array');
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new CheckpointError(
      'not-a-checkpoint',
      `not a tempered training checkpoint: expected the magic "${MAGIC}" in the first 8 bytes (got ${bytes.length} bytes)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(
      'version',
      `checkpoint format version ${version} is not supported (this build reads version ${CHECKPOINT_FORMAT_VERSION})`,
    );
  }
  const headerLength = view.getUint32(12, true);
  if (16 + headerLength + DIGEST_BYTES > bytes.length) {
    throw new CheckpointError(
      'truncated',
      `checkpoint truncated: its header claims ${headerLength} bytes but the file has only ${bytes.length} bytes`,
    );
  }
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(16, 16 + headerLength)));
  } catch (err) {
    throw new CheckpointError('corrupt', `checkpoint header is not valid JSON: ${(err as Error).message}`);
  }
  if (header?.kind !== 'tempered.training-checkpoint' || !Array.isArray(header.arrays)) {
    throw new CheckpointError(
      'corrupt',
      'checkpoint header lacks kind "tempered.training-checkpoint" or its array table',
    );
  }
  const dataStart = align8(16 + headerLength);
  let dataEnd = dataStart;
  for (const a of header.arrays) {
    const width = a.dtype === 'int32' || a.dtype === 'float32' ? 4 : NaN;
    const end = dataStart + a.offset + a.length * width;
    if (!Number.isFinite(end) || a.offset % 8 !== 0) {
      throw new CheckpointError('corrupt', `checkpoint array ${a.group}/${a.name} has a bad dtype or offset`);
    }
    dataEnd = Math.max(dataEnd, end);
  }
  const expectedLength = align8(dataEnd - dataStart) + dataStart + DIGEST_BYTES;
  if (bytes.length < expectedLength) {
    throw new CheckpointError(
      'truncated',
      `checkpoint truncated: expected ${expectedLength} bytes from its header, got ${bytes.length}`,
    );
  }
  if (bytes.length > expectedLength) {
    throw new CheckpointError(
      'corrupt',
      `checkpoint has ${bytes.length - expectedLength} trailing bytes (expected ${expectedLength} bytes in all)`,
    );
  }
  const digest = sha256(bytes.subarray(0, expectedLength - DIGEST_BYTES));
  const stored = bytes.subarray(expectedLength - DIGEST_BYTES);
  if (!digest.every((b, i) => b === stored[i])) {
    throw new CheckpointError('corrupt', 'checkpoint is corrupt: its SHA-256 does not match the content');
  }

  const migrated = migrateTrainingConfig(header.config);
  const parsed = TrainingConfigSchema.safeParse(migrated);
  if (!parsed.success) throw new CheckpointError('corrupt', 'checkpoint holds a config this build cannot parse');
  const config = parsed.data;
  const actualHash = configHash(config);
  // a config written by an older build hashes to its old spelling; the file's SHA-256 already vouches for it
  if (migrated !== header.config) header.configHash = actualHash;
  if (actualHash !== header.configHash) {
    throw new CheckpointError(
      'corrupt',
      `checkpoint config hash ${header.configHash} does not match its config (hashes to ${actualHash})`,
    );
  }
  if (options.expectConfigHash !== undefined && options.expectConfigHash !== header.configHash) {
    throw new CheckpointError(
      'config-mismatch',
      `checkpoint was written under config ${header.configHash}, but this run's config hashes to ${options.expectConfigHash}`,
    );
  }

  const read = (a: ArrayEntry): Float32Array | Int32Array => {
    // copy, so the result neither aliases nor depends on the alignment of the input buffer
    const slice = bytes.slice(dataStart + a.offset, dataStart + a.offset + a.length * 4);
    return a.dtype === 'int32' ? new Int32Array(slice.buffer) : new Float32Array(slice.buffer);
  };
  const group = (g: ArrayGroup): NamedArray[] =>
    header.arrays
      .filter((a) => a.group === g)
      .map((a) => ({ name: a.name, shape: a.shape, data: read(a) as Float32Array }));
  const orderEntry = header.arrays.find((a) => a.group === 'order');
  if (!orderEntry || orderEntry.dtype !== 'int32')
    throw new CheckpointError('corrupt', 'checkpoint lacks the data order');

  return {
    configHash: header.configHash,
    config,
    cursor: header.cursor,
    done: header.done,
    optimizerSteps: header.optimizerSteps,
    examplesSeen: header.examplesSeen,
    rngState: header.rngState,
    order: read(orderEntry) as Int32Array,
    data: header.data,
    weights: group('weights'),
    optimizer: { ...header.optimizer, slots: group('slots') },
    accumulation: { count: header.accumulation.count, grads: group('grads') },
    metrics: header.metrics,
    ...(header.guard ? { guard: readGuard(header.guard, group('previous'), group('best')) } : {}),
  };
}

function headerGuard(g: GuardState): HeaderGuard {
  const strip = <T extends { weights: NamedArray[] }>(v: T | undefined) => {
    if (!v) return undefined;
    const { weights: _w, ...rest } = v;
    return rest;
  };
  return {
    ...(g.previous ? { previous: strip(g.previous) } : {}),
    ...(g.best ? { best: strip(g.best) } : {}),
    ...(g.overfitting ? { overfitting: g.overfitting } : {}),
    ...(g.finalEpoch !== undefined ? { finalEpoch: g.finalEpoch } : {}),
    ...(g.start ? { start: g.start } : {}),
  };
}

function readGuard(h: HeaderGuard, previous: NamedArray[], best: NamedArray[]): GuardState {
  if ((h.previous !== undefined) !== previous.length > 0 || (h.best !== undefined) !== best.length > 0) {
    throw new CheckpointError('corrupt', 'checkpoint guard header and its weight arrays disagree');
  }
  return {
    ...(h.previous ? { previous: { ...h.previous, weights: previous } } : {}),
    ...(h.best ? { best: { ...h.best, weights: best } } : {}),
    ...(h.overfitting ? { overfitting: h.overfitting } : {}),
    ...(h.finalEpoch !== undefined ? { finalEpoch: h.finalEpoch } : {}),
    ...(h.start ? { start: h.start } : {}),
  };
}

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}
