import { Context } from '@temporalio/activity';
import { Failure, fail } from '../schemas/failures';
import type { AdversarialTrainInput, TrainResult } from '../schemas/payloads';
import { openSplit } from './datasets';
import { ensureBackend, execution, workPrefix } from './context';
import type { ActivityDeps } from './deps';
import { checkModelFits, readModel, writeModel } from './models';
import { runPrefix } from './names';
import { trainingConfig } from './spec-to-core';
import { runTraining } from './training-run';
import type { TrainingRunResult } from './training-run';

/**
 * adversarialTrain: PGD (or TRADES) adversarial training of the prepared model per the spec, resumable from the
 * newest checkpoint of this workflow execution in the object store (a retry on another worker continues where the
 * last checkpoint left off; a resumed run continues its predecessors' newest checkpoint when it has none of its
 * own). Writes the hardened model next to the checkpoints.
 */
export async function adversarialTrain(deps: ActivityDeps, input: AdversarialTrainInput): Promise<TrainResult> {
  const { spec, dataset } = input;
  const backend = await ensureBackend(deps, spec);
  const { workflowId, temporalRunId } = execution();
  const prefix = workPrefix(workflowId);
  const bucket = spec.artifacts.bucket;
  const train = await openSplit(deps, dataset, spec, 'train');
  const model = await readModel(deps.store, input.model);
  try {
    checkModelFits(
      model,
      { height: train.height, width: train.width, channels: train.channels, numClasses: train.numClasses },
      input.model.uri,
    );
    const r = await runTraining({
      deps,
      model,
      train,
      config: trainingConfig(spec),
      place: { bucket, prefix: `${prefix}hardened/checkpoints/` },
      earlierPlaces: (input.resumeFrom ?? []).map((e) => ({
        bucket,
        prefix: `${runPrefix(e.workflowId, e.temporalRunId)}/hardened/checkpoints/`,
      })),
      checkpointEvery: spec.training.checkpointEveryBatches,
      backend,
      threads: spec.compute.threads,
      workflowId,
      temporalRunId,
      reportProgress: true,
    });
    const guard = guardReport(r.guard);
    if (guard?.overfitting && spec.training.onOverfitting === 'fail') {
      throw fail(Failure.CatastrophicOverfitting, guard.warning ?? 'catastrophic overfitting', guard);
    }
    if (guard?.warning) log(guard.warning);
    const { files: _files, ...ref } = await writeModel(deps.store, model, bucket, `${prefix}hardened/`, {
      architecture: input.model.architecture,
    });
    return {
      model: ref,
      checkpointKey: `s3://${bucket}/${r.checkpointKey}`,
      epochs: r.epochs,
      batches: r.batches,
      ...(r.resumedFrom ? { resumedFrom: `s3://${bucket}/${r.resumedFrom}` } : {}),
      checkpoints: r.checkpoints,
      ...(r.finalLoss !== undefined && Number.isFinite(r.finalLoss) ? { finalLoss: r.finalLoss } : {}),
      seconds: r.seconds,
      backend,
      shards: r.shards,
      threads: r.threads,
      ...(guard ? { guard } : {}),
    };
  } finally {
    model.dispose();
  }
}

/** The trainer's guard summary (0-based epochs, −1 the start) as the payload says it (1-based, 0 the start). */
export function guardReport(g: TrainingRunResult['guard']): TrainResult['guard'] {
  if (!g || g.bestEpoch === undefined || g.bestRobust === undefined) return undefined;
  const keptEpoch = (g.finalEpoch ?? g.bestEpoch) + 1;
  const o = g.overfitting;
  const overfitting = o
    ? { epoch: o.epoch + 1, robust: o.robust, previousEpoch: o.previousEpoch + 1, previousRobust: o.previousRobust }
    : undefined;
  const at = (e: number) => (e === 0 ? 'the starting model' : `epoch ${e}`);
  const warning = overfitting
    ? `catastrophic overfitting: the probe robust accuracy fell from ${overfitting.previousRobust.toFixed(3)} ` +
      `(${at(overfitting.previousEpoch)}) to ${overfitting.robust.toFixed(3)} in epoch ${overfitting.epoch}; ` +
      `training stopped and the model is ${at(keptEpoch)}'s`
    : undefined;
  return {
    keptEpoch,
    bestEpoch: g.bestEpoch + 1,
    bestRobust: g.bestRobust,
    probeRobust: g.probeRobust,
    ...(overfitting ? { overfitting } : {}),
    ...(warning ? { warning } : {}),
  };
}

function log(message: string): void {
  try {
    Context.current().log.warn(message);
  } catch {
    process.stderr.write(`${message}\n`);
  }
}
