import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { attack } from '../attacks';
import { batchCount, makeBatch } from '../data/batch';
import type { ImageDataset } from '../data/dataset';
import { logitsFunction } from '../models/logits';
import { Rng } from '../random';
import { deserializeCheckpoint, serializeCheckpoint } from './checkpoint';
import type {
  DataShape,
  EpochRunning,
  EpochSummary,
  GuardState,
  NamedArray,
  ProbeResult,
  TrainingCheckpoint,
} from './checkpoint';
import { configHash, isAdversarial, parseTrainingConfig } from './config';
import type { TrainingConfig, TrainingConfigInput } from './config';
import { CheckpointError, TrainingDivergedError } from './errors';
import type { DivergenceInfo } from './errors';
import {
  disposeOptimizer,
  makeOptimizer,
  optimizerKind,
  readOptimizerState,
  setLearningRate,
  writeOptimizerState,
} from './optimizer-state';
import type { OptimizerKind, OptimizerTensors } from './optimizer-state';
import { recipeLossAndGrads } from './recipe-gradients';
import { epsilonAt, learningRateAt } from './schedules';
import { combineShards, inProcessRunner, shardJobs, unpackTensors, unpackWeights } from './shards';
import type { ShardRunner } from './shards';

export interface TrainerOptions {
  /** The model to train, in place. The caller owns it (and disposes it after the trainer). A final softmax is fine. */
  model: tf.LayersModel;
  train: ImageDataset;
  /** Parsed here (defaults filled); a bad config throws an Error listing the problems. */
  config: TrainingConfigInput;
  /** Continue from this checkpoint (bytes from `checkpoint()` or a deserialised state) instead of starting. */
  state?: Uint8Array | TrainingCheckpoint;
  /**
   * Accept a checkpoint written under a different config (e.g. a lower learning rate after a divergence, or more
   * epochs); default false: a different config hash is refused with a CheckpointError('config-mismatch').
   */
  allowConfigChange?: boolean;
  /**
   * Where the shards of a batch run when `config.shards` > 1: a data-parallel pool (tensor/parallel) on the same
   * backend, which the caller opens and closes; default: one after another on this thread, with the same result.
   */
  runner?: ShardRunner;
}

/** What one `step()` did. */
export interface StepResult {
  epoch: number;
  batch: number;
  /** the batch loss the gradients came from (the recipe's loss: adversarial CE, TRADES or MART) */
  loss: number;
  eps: number;
  lr: number;
  examples: number;
  seconds: number;
  examplesPerSec: number;
  /** whether this batch completed an optimizer step (false while accumulating gradients) */
  applied: boolean;
  optimizerSteps: number;
  /** set when this batch ended an epoch */
  epochSummary?: EpochSummary;
  done: boolean;
}

/** What the guard decided (see `Trainer.guard`); epochs are 0-based. */
export interface GuardSummary {
  bestEpoch?: number;
  bestRobust?: number;
  overfitting?: GuardState['overfitting'];
  /** once done: the epoch whose weights the model holds (the best one under keepBest); −1: the starting weights */
  finalEpoch?: number;
  /** the probe of the starting weights */
  start?: ProbeResult;
}

export interface Cursor {
  epoch: number;
  batch: number;
}

const emptyRunning = (): EpochRunning => ({ batches: 0, examples: 0, lossSum: 0, epsSum: 0, lastLr: 0, seconds: 0 });

/** A 32-bit seed for the randomness of batch (epoch, batch) of a run seeded `seed` (murmur3 finaliser mixing). */
export function batchSeed(seed: number, epoch: number, batch: number): number {
  const fmix = (h: number) => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  let h = fmix(seed >>> 0);
  h = fmix(h ^ Math.imul(epoch + 1, 0x9e3779b1));
  return fmix(h ^ Math.imul(batch + 1, 0x27d4eb2f));
}

/**
 * A resumable adversarial trainer driven batch by batch by its caller: `await step()` runs one batch (craft the
 * adversarial examples against the current weights in inference mode, then compute gradients; every
 * `gradientAccumulation` batches, and at the end of an epoch, one optimizer step). Between steps the caller may
 * heartbeat, `checkpoint()`, or stop. All randomness comes from the config seed: the epoch order from the run's
 * `Rng` (checkpointed), attack starts from a seed derived from (seed, epoch, batch); so resuming from any
 * checkpoint gives the same weights as a run that never stopped, bit for bit on the same backend.
 *
 * The trainer owns its optimizer and accumulated gradients: call `dispose()` when done (the model stays the
 * caller's). A diverged step throws `TrainingDivergedError` and leaves the last good state in place.
 */
export class Trainer {
  readonly config: TrainingConfig;
  readonly configHash: string;
  readonly batchesPerEpoch: number;
  private readonly model: tf.LayersModel;
  private readonly data: ImageDataset;
  private readonly kind: OptimizerKind;
  private readonly optimizer: tf.Optimizer;
  private readonly vars: tf.Variable[];
  private readonly runner: ShardRunner;
  private epoch = 0;
  private batch = 0;
  private finished = false;
  private optimizerSteps = 0;
  private examplesSeen = 0;
  private rng: Rng;
  private order: Int32Array;
  private accum: tf.Tensor[] | undefined;
  private accumCount = 0;
  private history: EpochSummary[] = [];
  private running: EpochRunning = emptyRunning();
  private divergence: TrainingDivergedError | undefined;
  /** the guard's split: training indices (undefined: all images) and held-out probe indices */
  private readonly trainIdx: Int32Array | undefined;
  private readonly probeIdx: Int32Array | undefined;
  private guardState: GuardState = emptyGuard();
  private busy = false;
  private disposed = false;

  private constructor(model: tf.LayersModel, data: ImageDataset, config: TrainingConfig, runner?: ShardRunner) {
    this.model = model;
    this.runner = runner ?? inProcessRunner;
    this.data = data;
    this.config = config;
    this.configHash = configHash(config);
    const split = guardSplit(config, data.count);
    this.trainIdx = split?.train;
    this.probeIdx = split?.probe;
    this.batchesPerEpoch = batchCount(this.trainCount, config.batchSize);
    this.kind = optimizerKind(config);
    this.vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.rng = Rng.fromSeed(config.seed);
    this.order = this.drawOrder();
    this.optimizer = makeOptimizer(config);
  }

  /** Starts a run, or continues one when `state` is given (see `resume`). */
  static async create(options: TrainerOptions): Promise<Trainer> {
    const { model, train, state, allowConfigChange = false, runner } = options;
    const config = parseTrainingConfig(options.config);
    checkInputs(model, train);
    const ck = state instanceof Uint8Array ? deserializeCheckpoint(state) : state;
    if (ck && !allowConfigChange && ck.configHash !== configHash(config)) {
      throw new CheckpointError(
        'config-mismatch',
        `checkpoint was written under config ${ck.configHash}, but this run's config hashes to ${configHash(config)} ` +
          '(pass allowConfigChange to continue under the new config)',
      );
    }
    const t = new Trainer(model, train, config, runner);
    if (ck) {
      try {
        await t.load(ck);
      } catch (err) {
        t.dispose();
        throw err;
      }
    }
    return t;
  }

  /** Continues the run saved in `checkpoint`, under its own config unless `options.config` is given. */
  static async resume(
    checkpoint: Uint8Array | TrainingCheckpoint,
    options: Omit<TrainerOptions, 'state' | 'config'> & { config?: TrainingConfigInput },
  ): Promise<Trainer> {
    const ck = checkpoint instanceof Uint8Array ? deserializeCheckpoint(checkpoint) : checkpoint;
    return Trainer.create({ ...options, config: options.config ?? ck.config, state: ck });
  }

  /** The next batch to run; `{ epoch: config.epochs, batch: 0 }` when done. */
  get cursor(): Cursor {
    return { epoch: this.epoch, batch: this.batch };
  }
  get done(): boolean {
    return this.finished;
  }
  get totalBatches(): number {
    return this.batchesPerEpoch * this.config.epochs;
  }
  get completedBatches(): number {
    return this.epoch * this.batchesPerEpoch + this.batch;
  }
  get epochHistory(): readonly EpochSummary[] {
    return this.history;
  }
  /** Images trained on: all of them, less the probe's held-out slice when the guard is on. */
  get trainCount(): number {
    return this.trainIdx?.length ?? this.data.count;
  }
  /** Images held out for the probe (0 when the guard is off). */
  get probeCount(): number {
    return this.probeIdx?.length ?? 0;
  }
  /**
   * What the guard decided so far: the best epoch by probe robust accuracy, a catastrophic overfitting that
   * stopped the run, and (once done) the epoch whose weights the model holds.
   */
  get guard(): GuardSummary {
    const g = this.guardState;
    return {
      ...(g.best ? { bestEpoch: g.best.epoch, bestRobust: g.best.robust } : {}),
      ...(g.overfitting ? { overfitting: { ...g.overfitting } } : {}),
      ...(g.finalEpoch !== undefined ? { finalEpoch: g.finalEpoch } : {}),
      ...(g.start ? { start: { ...g.start } } : {}),
    };
  }
  /** The error of the step that diverged, if one did; `step()` refuses to go on after it. */
  get diverged(): TrainingDivergedError | undefined {
    return this.divergence;
  }

  /** Runs the batch at the cursor and moves the cursor on. */
  async step(): Promise<StepResult> {
    this.assertUsable('step');
    if (this.divergence) throw this.divergence;
    if (this.finished) throw new Error(`training is done (${this.config.epochs} epochs); nothing left to step`);
    this.busy = true;
    try {
      return await this.runBatch();
    } finally {
      this.busy = false;
    }
  }

  /** The full training state at the current batch boundary (after a divergence: the last good state). */
  async state(): Promise<TrainingCheckpoint> {
    this.assertUsable('checkpoint');
    const weights = await Promise.all(this.model.weights.map((w) => toNamedArray(w.originalName, w.read())));
    const opt = await readOptimizerState(this.optimizer, this.kind);
    const slots = await Promise.all(opt.slots.map((s) => toNamedArray(s.name, s.tensor)));
    const grads = this.accum ? await Promise.all(this.accum.map((g, i) => toNamedArray(this.vars[i].name, g))) : [];
    return {
      configHash: this.configHash,
      config: this.config,
      cursor: this.cursor,
      done: this.finished,
      optimizerSteps: this.optimizerSteps,
      examplesSeen: this.examplesSeen,
      rngState: this.rng.state(),
      order: this.finished ? new Int32Array(0) : this.order.slice(),
      data: dataShape(this.data),
      weights,
      optimizer: {
        kind: this.kind,
        iterations: opt.iterations,
        ...(opt.accBeta1 !== undefined ? { accBeta1: opt.accBeta1, accBeta2: opt.accBeta2 } : {}),
        slots,
      },
      accumulation: { count: this.accumCount, grads },
      metrics: { history: this.history.map((h) => ({ ...h })), current: { ...this.running } },
      ...(this.probeIdx ? { guard: cloneGuard(this.guardState) } : {}),
    };
  }

  /** `state()` serialised (see `serializeCheckpoint`). */
  async checkpoint(): Promise<Uint8Array> {
    return serializeCheckpoint(await this.state());
  }

  /** Frees the optimizer and accumulated gradients. The model is the caller's. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeOptimizer(this.optimizer, this.kind);
    if (this.accum) tf.dispose(this.accum);
    this.accum = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private assertUsable(what: string): void {
    if (this.disposed) throw new Error(`${what}() on a disposed Trainer`);
    if (this.busy) throw new Error(`${what}() while a step is running: await each step() first`);
  }

  private async runBatch(): Promise<StepResult> {
    const c = this.config;
    const t0 = performance.now();
    const { epoch, batch } = this;
    const B = this.batchesPerEpoch;
    const progress = epoch + batch / B;
    if (this.probeIdx && epoch === 0 && batch === 0 && this.guardState.previous === undefined) await this.startGuard();
    const eps = isAdversarial(c) ? epsilonAt(c.epsilon!, progress) : 0;
    const lr = learningRateAt(c.lrSchedule, c.learningRate, { progress, epochs: c.epochs, batchesPerEpoch: B });

    const { loss, grads: gradList } = await this.batchGradients(eps, batchSeed(c.seed, epoch, batch));
    const n = Math.min(c.batchSize, this.trainCount - batch * c.batchSize);
    if (!Number.isFinite(loss) || loss > c.divergence.maxLoss) {
      tf.dispose(gradList);
      this.diverge({
        epoch,
        batch,
        loss,
        lr,
        reason: Number.isFinite(loss) ? 'loss-above-threshold' : 'non-finite-loss',
      });
    }

    // Sum into a new accumulator; it replaces the old one only once the step has succeeded.
    let summed: tf.Tensor[];
    if (this.accum) {
      const prev = this.accum;
      summed = tf.tidy(() => prev.map((a, i) => tf.add(a, gradList[i])));
      tf.dispose(gradList);
    } else {
      summed = gradList;
    }
    const count = this.accumCount + 1;
    const lastOfEpoch = batch === B - 1;
    const apply = count === c.gradientAccumulation || lastOfEpoch;
    if (apply) {
      try {
        await this.applyUpdate(summed, count, { epoch, batch, loss, lr, reason: 'non-finite-weights' });
      } finally {
        tf.dispose(summed);
      }
      if (this.accum) tf.dispose(this.accum);
      this.accum = undefined;
      this.accumCount = 0;
      this.optimizerSteps++;
    } else {
      if (this.accum) tf.dispose(this.accum);
      this.accum = summed;
      this.accumCount = count;
    }

    // Commit: metrics and cursor.
    const seconds = (performance.now() - t0) / 1000;
    this.examplesSeen += n;
    const r = this.running;
    r.batches++;
    r.examples += n;
    r.lossSum += loss;
    r.epsSum += eps;
    r.seconds += seconds;
    if (apply) r.lastLr = lr;
    let epochSummary: EpochSummary | undefined;
    if (lastOfEpoch) {
      epochSummary = {
        epoch,
        batches: r.batches,
        examples: r.examples,
        meanLoss: r.lossSum / Math.max(r.batches, 1),
        meanEps: r.epsSum / Math.max(r.batches, 1),
        lastLr: r.lastLr,
        seconds: r.seconds,
      };
      const stop = this.probeIdx ? await this.afterEpoch(epochSummary) : false;
      this.history.push(epochSummary);
      this.running = emptyRunning();
      this.epoch++;
      this.batch = 0;
      if (this.epoch >= c.epochs || stop) {
        this.finished = true;
        if (this.probeIdx) this.finish();
      } else this.order = this.drawOrder();
    } else {
      this.batch++;
    }
    return {
      epoch,
      batch,
      loss,
      eps,
      lr,
      examples: n,
      seconds,
      examplesPerSec: n / Math.max(seconds, 1e-9),
      applied: apply,
      optimizerSteps: this.optimizerSteps,
      ...(epochSummary ? { epochSummary } : {}),
      done: this.finished,
    };
  }

  /**
   * The batch at the cursor: the recipe's loss and its gradients wrt the trainable variables (see
   * `recipeLossAndGrads`), on the whole batch at once, or shard by shard under `config.shards` (each shard's
   * gradient weighted by its size, the batch-norm statistics averaged the same way) on the runner the trainer was
   * given, else on this thread. Every other tensor is disposed; the caller disposes the gradients.
   */
  private async batchGradients(eps: number, seed: number): Promise<{ loss: number; grads: tf.Tensor[] }> {
    const c = this.config;
    const { x, y } = makeBatch(this.data, this.order, this.batch * c.batchSize, c.batchSize);
    try {
      const n = x.shape[0];
      const step = { eps, seed, clean: Math.round(c.cleanFraction * n) };
      if ((c.shards ?? 1) === 1) {
        const { value, grads } = recipeLossAndGrads(this.model, this.vars, x, y, c, step);
        const loss = (await value.data())[0];
        value.dispose();
        return { loss, grads: this.vars.map((v) => grads[v.name]) };
      }
      const jobs = shardJobs(n, c.shards!, step);
      const combined = combineShards(jobs, await this.runner.run(this.model, x, y, c, jobs));
      unpackWeights(this.model.nonTrainableWeights, combined.stats);
      const grads = unpackTensors(
        this.vars.map((v) => v.shape),
        combined.grads,
      );
      return { loss: combined.loss, grads };
    } finally {
      tf.dispose([x, y]);
    }
  }

  /** The next epoch's order: a permutation of the training indices drawn from the run's RNG. */
  private drawOrder(): Int32Array {
    const p = this.rng.permutation(this.trainCount);
    const idx = this.trainIdx;
    return idx ? p.map((i) => idx[i]) : p;
  }

  /**
   * The guard at the end of an epoch: probes the model, records the result in `summary`, and either accepts the
   * epoch (its weights become the revert point, and the best ones when the probe is the best so far) or, when the
   * probe robust accuracy fell by more than `maxDrop` since the last accepted epoch, reverts the model to that
   * epoch's weights and returns true (stop: catastrophic overfitting).
   */
  private async afterEpoch(summary: EpochSummary): Promise<boolean> {
    const g = this.guardState;
    const guard = this.config.guard!;
    const probe = await this.probe();
    summary.probe = probe;
    if (g.previous && g.previous.robust - probe.robust > guard.maxDrop) {
      g.overfitting = {
        epoch: summary.epoch,
        robust: probe.robust,
        previousEpoch: g.previous.epoch,
        previousRobust: g.previous.robust,
      };
      this.loadWeights(g.previous.weights);
      return true;
    }
    const weights = await this.readWeights();
    g.previous = { epoch: summary.epoch, robust: probe.robust, weights };
    if (!g.best || probe.robust >= g.best.robust) g.best = { epoch: summary.epoch, robust: probe.robust, weights };
    return false;
  }

  /**
   * Before the first batch of a guarded run: probes the starting weights, which become the first revert point and
   * the first candidate for the best (epoch −1), so a collapse in the first epoch is caught too and a run that never
   * beats its starting model keeps it.
   */
  private async startGuard(): Promise<void> {
    const probe = await this.probe();
    const weights = await this.readWeights();
    this.guardState.previous = { epoch: -1, robust: probe.robust, weights };
    this.guardState.best = { epoch: -1, robust: probe.robust, weights };
    this.guardState.start = probe;
  }

  /** At the end of a guarded run: load the best epoch's weights when asked to, and note which epoch the model holds. */
  private finish(): void {
    const g = this.guardState;
    const keepBest = this.config.guard?.keepBest ?? false;
    const current = g.overfitting ? g.previous?.epoch : this.epoch - 1;
    if (keepBest && g.best && g.best.epoch !== current) {
      this.loadWeights(g.best.weights);
      g.finalEpoch = g.best.epoch;
    } else {
      g.finalEpoch = current;
    }
  }

  /**
   * Clean and robust accuracy on the held-out probe images under PGD (`guard.steps` steps of ε/4, one random
   * start, the same seed every epoch) at epsilon.max. Leaves no tensors behind.
   */
  private async probe(): Promise<ProbeResult> {
    const c = this.config;
    const guard = c.guard!;
    const idx = this.probeIdx!;
    const eps = c.epsilon?.max ?? 0;
    const logits = logitsFunction(this.model);
    let clean = 0;
    let robust = 0;
    // chunks of at most 16 images, with a turn of the event loop between them: a long synchronous probe would hold
    // up the caller's I/O (heartbeats, a metrics endpoint) for much longer than one training batch does
    const size = Math.min(c.batchSize, 16);
    for (let start = 0; start < idx.length; start += size) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      const { x, y } = makeBatch(this.data, idx, start, size);
      try {
        const counts = tf.tidy(() => {
          const adv = attack(this.model, x, y, {
            method: 'pgd',
            norm: c.attack.norm,
            eps,
            stepSize: eps / 4,
            steps: guard.steps,
            restarts: 1,
            randomStart: true,
            seed: batchSeed(c.seed ^ 0x70726f62, 0, start),
          });
          const okClean = tf.equal(tf.argMax(logits(x), 1), y);
          const okAdv = tf.logicalAnd(okClean, tf.equal(tf.argMax(logits(adv), 1), y));
          return tf.stack([tf.sum(tf.cast(okClean, 'int32')), tf.sum(tf.cast(okAdv, 'int32'))]);
        });
        const [a, b] = await counts.data();
        counts.dispose();
        clean += a;
        robust += b;
      } finally {
        tf.dispose([x, y]);
      }
    }
    return { eps, clean: clean / idx.length, robust: robust / idx.length };
  }

  private async readWeights(): Promise<NamedArray[]> {
    return Promise.all(this.model.weights.map((w) => toNamedArray(w.originalName, w.read())));
  }

  private loadWeights(weights: readonly NamedArray[]): void {
    const ts = weights.map((w) => tf.tensor(w.data, w.shape, 'float32'));
    try {
      this.model.setWeights(ts);
    } finally {
      tf.dispose(ts);
    }
  }

  /** One optimizer step with the mean of `summed` over `count` batches; rolls back if the weights go non-finite. */
  private async applyUpdate(summed: tf.Tensor[], count: number, info: DivergenceInfo): Promise<void> {
    const backup = await this.snapshot();
    try {
      setLearningRate(this.optimizer, this.kind, info.lr);
      const wd = this.config.weightDecay ?? 0;
      tf.tidy(() => {
        let mean = count === 1 ? summed : summed.map((g) => tf.div(g, count));
        if (wd > 0 && this.kind === 'adam') {
          // AdamW (decoupled, as torch.optim.AdamW): w ← w·(1 − lr·λ), then the Adam step on the gradient alone
          const keep = 1 - info.lr * wd;
          for (const v of this.vars) v.assign(tf.mul(v, keep));
        } else if (wd > 0) {
          // SGD (coupled L2, as torch.optim.SGD): g ← g + λ·w, then (momentum and) the step
          mean = mean.map((g, i) => tf.add(g, tf.mul(this.vars[i], wd)));
        }
        this.optimizer.applyGradients(this.vars.map((v, i) => ({ name: v.name, tensor: mean[i] })));
      });
      const finite = tf.tidy(() =>
        tf.stack(this.model.weights.map((w) => tf.all(tf.isFinite(w.read())).toFloat())).min(),
      );
      const ok = (await finite.data())[0] === 1;
      finite.dispose();
      if (!ok) {
        await this.restore(backup);
        this.diverge(info);
      }
    } finally {
      tf.dispose(backup.weights);
      tf.dispose(backup.optimizer.slots.map((s) => s.tensor));
    }
  }

  /** Copies of the weights and optimizer state (clones share data; cheap). The caller disposes them. */
  private async snapshot(): Promise<{ weights: tf.Tensor[]; optimizer: OptimizerTensors }> {
    const opt = await readOptimizerState(this.optimizer, this.kind);
    return {
      weights: this.model.weights.map((w) => tf.clone(w.read())),
      optimizer: { ...opt, slots: opt.slots.map((s) => ({ name: s.name, tensor: tf.clone(s.tensor) })) },
    };
  }

  private async restore(s: { weights: tf.Tensor[]; optimizer: OptimizerTensors }): Promise<void> {
    this.model.setWeights(s.weights);
    await writeOptimizerState(this.optimizer, this.kind, s.optimizer);
  }

  private diverge(info: DivergenceInfo): never {
    this.divergence = new TrainingDivergedError(info, this.config.divergence.maxLoss);
    throw this.divergence;
  }

  private async load(ck: TrainingCheckpoint): Promise<void> {
    const shape = dataShape(this.data);
    for (const k of Object.keys(shape) as (keyof DataShape)[]) {
      if (ck.data[k] !== shape[k]) {
        throw new CheckpointError(
          'data-mismatch',
          `checkpoint was taken on data with ${k}=${ck.data[k]}, but the training data has ${k}=${shape[k]}`,
        );
      }
    }
    const B = this.batchesPerEpoch;
    if (ck.done) {
      if (ck.order.length !== 0)
        throw new CheckpointError('corrupt', 'a finished checkpoint must not hold a data order');
    } else if (ck.order.length !== this.trainCount) {
      throw new CheckpointError(
        'data-mismatch',
        `checkpoint data order has ${ck.order.length} entries, the training data ${this.trainCount} images`,
      );
    }
    for (const w of [ck.guard?.previous?.weights, ck.guard?.best?.weights]) {
      if (
        w &&
        (w.length !== this.model.weights.length || w.some((a, i) => !sameShape(this.model.weights[i].shape, a.shape)))
      ) {
        throw new CheckpointError('model-mismatch', "the guard's saved weights in the checkpoint do not fit the model");
      }
    }
    const { epoch, batch } = ck.cursor;
    if (!Number.isInteger(epoch) || !Number.isInteger(batch) || epoch < 0 || batch < 0 || batch >= B) {
      throw new CheckpointError('corrupt', `checkpoint cursor epoch ${epoch} batch ${batch} is outside 0..${B - 1}`);
    }
    const modelWeights = this.model.weights;
    if (ck.weights.length !== modelWeights.length) {
      throw new CheckpointError(
        'model-mismatch',
        `checkpoint holds ${ck.weights.length} weight tensors, the model has ${modelWeights.length}`,
      );
    }
    modelWeights.forEach((w, i) => {
      if (!sameShape(w.shape, ck.weights[i].shape)) {
        throw new CheckpointError(
          'model-mismatch',
          `weight ${i} (${w.originalName}) has shape [${w.shape}] in the model but [${ck.weights[i].shape}] in the checkpoint (${ck.weights[i].name})`,
        );
      }
    });
    if (ck.optimizer.kind !== this.kind) {
      throw new CheckpointError(
        'config-mismatch',
        `checkpoint holds ${ck.optimizer.kind} optimizer state, the config asks for ${this.kind}`,
      );
    }
    const expectedSlots = this.kind === 'adam' ? 2 * this.vars.length : this.kind === 'momentum' ? this.vars.length : 0;
    if (ck.optimizer.slots.length !== 0 && ck.optimizer.slots.length !== expectedSlots) {
      throw new CheckpointError(
        'model-mismatch',
        `checkpoint holds ${ck.optimizer.slots.length} optimizer slots, the model needs ${expectedSlots}`,
      );
    }
    ck.optimizer.slots.forEach((s, i) => {
      const v = this.vars[i % this.vars.length];
      if (!sameShape(v.shape, s.shape)) {
        throw new CheckpointError(
          'model-mismatch',
          `optimizer slot ${s.name} has shape [${s.shape}], expected [${v.shape}]`,
        );
      }
    });
    if (ck.accumulation.grads.length !== 0 && ck.accumulation.grads.length !== this.vars.length) {
      throw new CheckpointError(
        'model-mismatch',
        `checkpoint holds ${ck.accumulation.grads.length} accumulated gradients, the model has ${this.vars.length} trainable weights`,
      );
    }

    const weights = ck.weights.map((w) => tf.tensor(w.data, w.shape, 'float32'));
    const slots = ck.optimizer.slots.map((s) => ({ name: s.name, tensor: tf.tensor(s.data, s.shape, 'float32') }));
    try {
      this.model.setWeights(weights);
      await writeOptimizerState(this.optimizer, this.kind, {
        iterations: ck.optimizer.iterations,
        accBeta1: ck.optimizer.accBeta1,
        accBeta2: ck.optimizer.accBeta2,
        slots,
      });
    } finally {
      tf.dispose(weights);
      tf.dispose(slots.map((s) => s.tensor));
    }
    this.accum = ck.accumulation.grads.length
      ? ck.accumulation.grads.map((g) => tf.tensor(g.data, g.shape, 'float32'))
      : undefined;
    this.accumCount = ck.accumulation.count;
    if (epoch > this.config.epochs || (!ck.done && epoch === this.config.epochs)) {
      throw new CheckpointError(
        'config-mismatch',
        `checkpoint is at epoch ${epoch} batch ${batch}, past the ${this.config.epochs} epochs of the config`,
      );
    }
    this.epoch = epoch;
    this.batch = batch;
    // a finished run continues when the (changed) config asks for more epochs
    // (a run stopped by catastrophic overfitting stays stopped)
    this.finished = ck.done && (epoch >= this.config.epochs || ck.guard?.overfitting !== undefined);
    this.optimizerSteps = ck.optimizerSteps;
    this.examplesSeen = ck.examplesSeen;
    this.rng = Rng.fromState(ck.rngState);
    this.guardState = ck.guard ? cloneGuard(ck.guard) : emptyGuard();
    this.order = ck.done && !this.finished ? this.drawOrder() : ck.order.slice();
    this.history = ck.metrics.history.map((h) => ({ ...h }));
    this.running = { ...ck.metrics.current };
  }
}

const emptyGuard = (): GuardState => ({});

function cloneGuard(g: GuardState): GuardState {
  return {
    ...(g.previous ? { previous: { ...g.previous } } : {}),
    ...(g.best ? { best: { ...g.best } } : {}),
    ...(g.overfitting ? { overfitting: { ...g.overfitting } } : {}),
    ...(g.finalEpoch !== undefined ? { finalEpoch: g.finalEpoch } : {}),
    ...(g.start ? { start: { ...g.start } } : {}),
  };
}

/**
 * The guard's held-out slice: `guard.probeImages` images (at most a tenth of the data) drawn with a seed of their
 * own, so the split never changes the run's RNG stream; undefined when the guard is off or the run is not
 * adversarial. Both index lists ascend.
 */
function guardSplit(c: TrainingConfig, count: number): { train: Int32Array; probe: Int32Array } | undefined {
  if (!c.guard || !isAdversarial(c)) return undefined;
  const n = Math.min(c.guard.probeImages, Math.floor(count / 10));
  if (n < 1) return undefined;
  const perm = Rng.fromSeed((c.seed ^ 0x67756172) >>> 0).permutation(count);
  const probe = perm.slice(0, n).sort();
  const train = perm.slice(n).sort();
  return { train, probe };
}

function checkInputs(model: tf.LayersModel, train: ImageDataset): void {
  if (!model || typeof (model as { apply?: unknown }).apply !== 'function') {
    throw new Error('Trainer needs a tf.LayersModel as model');
  }
  if (!train || !(train.pixels instanceof Uint8Array) || !(train.labels instanceof Int32Array)) {
    throw new Error('Trainer needs an ImageDataset as train (pixels: Uint8Array, labels: Int32Array)');
  }
  if (train.count < 1) throw new Error(`Trainer needs at least one training image, got ${train.count}`);
  const input = model.inputs[0]?.shape;
  if (input && (input[1] !== train.height || input[2] !== train.width || input[3] !== train.channels)) {
    throw new Error(
      `model expects images of [${input.slice(1)}] but the training data has [${train.height},${train.width},${train.channels}]`,
    );
  }
  const classes = model.outputs[0]?.shape[1];
  if (typeof classes === 'number' && classes !== train.numClasses) {
    throw new Error(`model outputs ${classes} classes but the training data has ${train.numClasses}`);
  }
}

function dataShape(d: ImageDataset): DataShape {
  return { count: d.count, height: d.height, width: d.width, channels: d.channels, numClasses: d.numClasses };
}

async function toNamedArray(name: string, t: tf.Tensor): Promise<NamedArray> {
  const data = await t.data();
  if (!(data instanceof Float32Array)) throw new Error(`tensor ${name} is ${t.dtype}, checkpoints hold float32 only`);
  return { name, shape: [...t.shape], data: data.slice() };
}

function sameShape(a: readonly (number | null)[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
