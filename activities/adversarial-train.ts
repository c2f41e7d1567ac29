import type { AdversarialTrainInput, TrainResult } from '../schemas/payloads';
import { openSplit } from './datasets';
import { ensureBackend, execution, workPrefix } from './context';
import type { ActivityDeps } from './deps';
import { checkModelFits, readModel, writeModel } from './models';
import { trainingConfig } from './spec-to-core';
import { runTraining } from './training-run';

/**
 * adversarialTrain: PGD (or TRADES) adversarial training of the prepared model per the spec, resumable from the
 * newest checkpoint of this workflow execution in the object store (a retry on another worker continues where the
 * last checkpoint left off). Writes the hardened model next to the checkpoints.
 */
export async function adversarialTrain(deps: ActivityDeps, input: AdversarialTrainInput): Promise<TrainResult> {
  const { spec, dataset } = input;
  const backend = await ensureBackend(deps, spec);
  const { workflowId, runId } = execution();
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
      checkpointEvery: spec.training.checkpointEveryBatches,
      backend,
      workflowId,
      temporalRunId: runId,
      reportProgress: true,
    });
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
    };
  } finally {
    model.dispose();
  }
}
