import { Context } from '@temporalio/activity';
import type { EvaluateShardInput, EvaluateShardRef } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { Failure, fail } from '../schemas/failures';
import { ROBUST, WRONG_CLEAN } from '../tensor/eval/reduce';
import type { SuiteShardResult } from '../tensor/eval/reduce';
import { openSplit } from './datasets';
import { ensureBackend, execution, heartbeat, workPrefix } from './context';
import type { ActivityDeps } from './deps';
import { runPhases } from './evaluate-phases';
import type { ShardHeartbeat } from './evaluate-phases';
import { checkModelFits, readModel } from './models';
import { runPhasesOnThread } from './shard-thread';

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

/** Where a shard keeps its results. */
export const shardKey = (workflowId: string, role: string, index: number) =>
  `${workPrefix(workflowId)}${role}/shards/${String(index).padStart(5, '0')}.json`;

/**
 * Milliseconds between liveness heartbeats while the shard loads its data or an attack awaits between iterations
 * (heartbeat timeouts are minutes). A synchronous batch (PGD) holds the event loop: it must finish inside the
 * heartbeat timeout (`compute.evaluationHeartbeatTimeout`), so size `evaluation.batchSize` for the slowest worker.
 */
const LIVENESS_MS = 5_000;

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
  beat: ShardHeartbeat,
  report: (b: ShardHeartbeat) => void,
): Promise<EvaluateShardRef> {
  const { spec, dataset, role, shard } = input;
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
    const hooks = { report, signal: Context.current().cancellationSignal };
    // With more than one core, the shard's tensor work runs on a thread of its own, so the heavy worker runs that
    // many shards side by side (worker/main.ts gives each one core); one core keeps it on this thread.
    const done =
      (deps.threads ?? 1) > 1
        ? await runPhasesOnThread(model, test, spec, shard, beat, { ...hooks, backend })
        : await runPhases(model, test, spec, shard, beat, hooks);
    const file = shardFile(spec, shard.start, shard.count, done);
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
