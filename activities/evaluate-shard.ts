import { Context } from '@temporalio/activity';
import type { Norm } from '../tensor/attacks/options';
import type { EvaluateShardInput, EvaluateShardRef, ShardProgress } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { Failure, fail } from '../schemas/failures';
import { batchSeed } from '../tensor/eval/evaluate';
import { ROBUST, WRONG_CLEAN } from '../tensor/eval/reduce';
import type { SuiteShardResult } from '../tensor/eval/reduce';
import { customAttackEntry, runSuiteShard, suiteAttacks } from '../tensor/eval/suite';
import type { SuiteAttackEntry, SuiteShardState } from '../tensor/eval/suite';
import { openSplit } from './datasets';
import { ensureBackend, execution, heartbeat, workPrefix } from './context';
import type { ActivityDeps } from './deps';
import { evalAttack } from './spec-to-core';
import { checkModelFits, readModel } from './models';

/**
 * What one shard stores: the suite's per-example results, and each `evaluation.attacks` entry run on its own
 * over every image (for `custom` the suite is derived from those: the first listed attack that broke a point).
 */
export interface ShardFile {
  start: number;
  count: number;
  suite: SuiteShardResult;
  listed: SuiteShardResult[];
}

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

/** Where a shard keeps its results. */
export const shardKey = (workflowId: string, role: string, index: number) =>
  `${workPrefix(workflowId)}${role}/shards/${String(index).padStart(5, '0')}.json`;

/**
 * Milliseconds between liveness heartbeats while the shard loads its data or an attack awaits between iterations
 * (heartbeat timeouts are minutes). A synchronous batch (PGD) holds the event loop: it must finish inside the
 * heartbeat timeout (`compute.evaluationHeartbeatTimeout`), so size `evaluation.batchSize` for the slowest worker.
 */
const LIVENESS_MS = 5_000;

/** The phases of a shard: the named suite (unless custom), then each listed attack alone (at its own ε). */
function phases(
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

/** At most one progress heartbeat a second from inside a batch (the SDK throttles what reaches the server). */
const WORK_BEAT_MS = 1000;

/**
 * evaluateShard (heavy queue): one shard of an evaluation. Runs the suite and the listed attacks on test images
 * [start, start + count), heartbeats after every batch (and every few seconds while a batch runs) with a
 * `ShardHeartbeat`, resumes from the previous attempt's heartbeat at the attack and batch it reached, and stores
 * its per-example results in the object store. Seeds derive from the spec, the phase, the attack and the batch,
 * so a resumed or retried shard repeats exactly, on any worker.
 */
export async function evaluateShard(deps: ActivityDeps, input: EvaluateShardInput): Promise<EvaluateShardRef> {
  let beat: ShardHeartbeat = resumeFrom(input.resume) ?? { phase: 0, done: [] };
  const timer = setInterval(() => heartbeat(beat), LIVENESS_MS);
  heartbeat(beat);
  try {
    return await runShard(deps, input, beat, (b) => {
      beat = b;
      heartbeat(b);
    });
  } finally {
    clearInterval(timer);
  }
}

/** The shard's work; `beat` is where it starts, `report` records (and heartbeats) where it stands. */
async function runShard(
  deps: ActivityDeps,
  input: EvaluateShardInput,
  start: ShardHeartbeat,
  report: (b: ShardHeartbeat) => void,
): Promise<EvaluateShardRef> {
  const { spec, dataset, role, shard } = input;
  let beat = start;
  const backend = await ensureBackend(deps, spec);
  const { workflowId } = execution();
  const test = await openSplit(deps, dataset, spec, 'test');
  if (shard.start + shard.count > test.count)
    throw fail(
      Failure.InvalidSpec,
      `shard ${shard.index}: images [${shard.start}, ${shard.start + shard.count}) but the test split has ${test.count}`,
    );
  const model = await readModel(deps.store, input.model);
  const started = performance.now();
  // Resumed whenever an earlier attempt's heartbeat got anywhere: inside a phase (its attack and batch) or past one.
  const resumedAt =
    beat.state || beat.phase > 0
      ? { phase: beat.phase, attack: beat.state?.attack ?? 0, batch: beat.state?.batch ?? 0 }
      : undefined;
  try {
    checkModelFits(model, test, input.model.uri);
    const all = phases(spec, test.numClasses);
    const signal = Context.current().cancellationSignal;
    // Where the shard stands, for people following it: each phase weighs what its attacks cost.
    const phaseWork = all.map((ph) => ph.attacks.reduce((s, e) => s + (e.work ?? 1), 0));
    const totalWork = phaseWork.reduce((s, w) => s + w, 0);
    const at = (p: number, attack: string, inPhase: number): ShardProgress => ({
      images: shard.count,
      attack,
      fraction:
        p >= all.length || totalWork === 0
          ? 1
          : Math.min(1, (phaseWork.slice(0, p).reduce((s, w) => s + w, 0) + phaseWork[p] * inPhase) / totalWork),
    });
    let lastWorkBeat = 0;
    for (let p = beat.phase; p < all.length; p++) {
      const { norm, eps, attacks } = all[p];
      const result = await runSuiteShard(model, test, {
        attacks,
        norm,
        eps,
        start: shard.start,
        count: shard.count,
        batchSize: spec.evaluation.batchSize,
        seed: batchSeed(spec.training.seed, 1000 + p, 0),
        resume: p === beat.phase ? beat.state : undefined,
        signal,
        onProgress: (state, now) => {
          beat = { ...beat, phase: p, state, progress: at(p, now.attack, now.fraction) };
          report(beat);
        },
        // Inside a batch only the progress moves (the resume state is the batch's start); a heartbeat a second.
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
    const file = shardFile(spec, shard.start, shard.count, beat.done);
    const key = shardKey(workflowId, role, shard.index);
    await deps.store.putJson(spec.artifacts.bucket, key, file);
    return {
      index: shard.index,
      start: shard.start,
      count: shard.count,
      key,
      seconds: (performance.now() - started) / 1000,
      backend,
      ...(resumedAt ? { resumedAt } : {}),
    };
  } finally {
    model.dispose();
  }
}

/** The shard's results by phase, as stored: for `custom` the suite is the listed attacks in order. */
export function shardFile(
  spec: Pick<Spec, 'evaluation'>,
  start: number,
  count: number,
  done: SuiteShardResult[],
): ShardFile {
  if (spec.evaluation.suite !== 'custom') return { start, count, suite: done[0], listed: done.slice(1) };
  const first = done[0];
  const brokenBy = first.brokenBy.map((b, i) => {
    if (b === WRONG_CLEAN) return WRONG_CLEAN;
    const k = done.findIndex((r) => r.brokenBy[i] >= 0);
    return k < 0 ? ROBUST : k;
  });
  return {
    start,
    count,
    suite: {
      ...first,
      brokenBy,
      attacks: done.map((r) => r.attacks[0]),
      seconds: done.reduce((a, r) => a + r.seconds, 0),
    },
    listed: done,
  };
}

/** This attempt's heartbeat details (a Temporal retry), else the earlier attempt's the workflow handed over. */
function resumeFrom(handedOver: unknown): ShardHeartbeat | undefined {
  const valid = (d: unknown): d is ShardHeartbeat =>
    !!d && Number.isInteger((d as ShardHeartbeat).phase) && Array.isArray((d as ShardHeartbeat).done);
  const own: unknown = Context.current().info.heartbeatDetails;
  return valid(own) ? own : valid(handedOver) ? handedOver : undefined;
}
