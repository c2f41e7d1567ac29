/**
 * The work of one evaluation shard, without Temporal: the phases it runs and the loop over them. The shard
 * activity runs it on its own thread, or hands it to a thread of its own (activities/shard-thread.ts); both give
 * the same results, since every seed derives from the spec, the phase, the attack and the batch.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ShardProgress } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import type { Norm } from '../tensor/attacks/options';
import type { LabeledImages } from '../tensor/eval/data';
import { batchSeed } from '../tensor/eval/evaluate';
import type { SuiteShardResult } from '../tensor/eval/reduce';
import { customAttackEntry, runSuiteShard, suiteAttacks } from '../tensor/eval/suite';
import type { SuiteAttackEntry, SuiteShardState } from '../tensor/eval/suite';
import { evalAttack } from './spec-to-core';

/** The spec sections a shard's phases read. */
export type PhasesSpec = Pick<Spec, 'evaluation' | 'attack' | 'epsilon' | 'training'>;

/**
 * A shard's heartbeat: the phase it is in (0 the suite, unless `custom`; then one phase per listed attack), where
 * that phase stands, and the results of the phases already done. A few numbers per image: small at shard sizes.
 */
export interface ShardHeartbeat {
  phase: number;
  state?: SuiteShardState;
  done: SuiteShardResult[];
  /** For people following the run (never read to resume). */
  progress?: ShardProgress;
}

/** The test images [start, start + count) of a shard. */
export interface ShardRange {
  start: number;
  count: number;
}

/** The phases of a shard: the named suite (unless custom), then each listed attack alone (at its own ε). */
export function phases(
  spec: Pick<Spec, 'evaluation' | 'attack' | 'epsilon'>,
  numClasses: number,
): { norm: Norm; eps: number; attacks: SuiteAttackEntry[] }[] {
  const listed = spec.evaluation.attacks.map((a) => ({
    norm: a.norm,
    eps: a.eps,
    attacks: [customAttackEntry(evalAttack(a))],
  }));
  const { suite } = spec.evaluation;
  if (suite === 'custom') return listed;
  const norm = spec.attack.norm;
  return [{ norm, eps: spec.epsilon.max, attacks: suiteAttacks(suite, { norm, numClasses }) }, ...listed];
}

/** At most one progress report a second from inside a batch (the SDK throttles what reaches the server). */
const WORK_BEAT_MS = 1000;

/**
 * Runs the phases of the shard `range` of `test` from `start` (a fresh `{ phase: 0, done: [] }` or an earlier
 * attempt's heartbeat), reporting where it stands after every batch (a state to resume from) and, at most once a
 * second, from inside a batch (only the progress moves). Returns every phase's result, in order.
 */
export async function runPhases(
  model: tf.LayersModel,
  test: LabeledImages,
  spec: PhasesSpec,
  range: ShardRange,
  start: ShardHeartbeat,
  hooks: { report: (b: ShardHeartbeat) => void; signal?: AbortSignal },
): Promise<SuiteShardResult[]> {
  const { report, signal } = hooks;
  const all = phases(spec, test.numClasses);
  // Where the shard stands, for people following it: each phase weighs what its attacks cost.
  const phaseWork = all.map((ph) => ph.attacks.reduce((s, e) => s + (e.work ?? 1), 0));
  const totalWork = phaseWork.reduce((s, w) => s + w, 0);
  const at = (p: number, attack: string, inPhase: number): ShardProgress => ({
    images: range.count,
    attack,
    fraction:
      p >= all.length || totalWork === 0
        ? 1
        : Math.min(1, (phaseWork.slice(0, p).reduce((s, w) => s + w, 0) + phaseWork[p] * inPhase) / totalWork),
  });
  let beat = start;
  let lastWorkBeat = 0;
  for (let p = beat.phase; p < all.length; p++) {
    const { norm, eps, attacks } = all[p];
    const result = await runSuiteShard(model, test, {
      attacks,
      norm,
      eps,
      start: range.start,
      count: range.count,
      batchSize: spec.evaluation.batchSize,
      seed: batchSeed(spec.training.seed, 1000 + p, 0),
      resume: p === beat.phase ? beat.state : undefined,
      signal,
      onProgress: (state, now) => {
        beat = { ...beat, phase: p, state, progress: at(p, now.attack, now.fraction) };
        report(beat);
      },
      onWork: (now) => {
        beat = { ...beat, progress: at(p, now.attack, now.fraction) };
        if (performance.now() - lastWorkBeat < WORK_BEAT_MS) return;
        lastWorkBeat = performance.now();
        report(beat);
      },
    });
    // Past the last phase, `at` says the shard has done all its attacks (it is storing its results).
    beat = { phase: p + 1, done: [...beat.done, result], progress: at(p + 1, all[p + 1]?.attacks[0]?.name ?? '', 0) };
    report(beat);
  }
  return beat.done;
}
