import { performance } from 'node:perf_hooks';
import type * as tf from '@tensorflow/tfjs';
import { Failure, fail } from '../schemas/failures';
import type { ModelRef, PrepareModelInput, PreparedModel } from '../schemas/payloads';
import type { Spec, TrainBaselineSource } from '../schemas/spec';
import { formatS3Uri } from '../storage/object-store';
import type { ImageDataset } from '../tensor/data';
import { buildReferenceCnn, buildSmallResNet } from '../tensor/models';
import { openSplit } from './datasets';
import { ensureBackend, execution, workPrefix } from './context';
import type { ActivityDeps } from './deps';
import { artifactPaths } from '../artifacts/store';
import { checkModelFits, readModel, readPointer, writeModel } from './models';
import { baselineConfig } from './spec-to-core';
import { runTraining } from './training-run';

/**
 * prepareModel: resolves `spec.model.source` to a model in the object store that fits the dataset. An artifact
 * (the production pointer or a version), a folder or an s3:// model is loaded and checked; `train-baseline` (or
 * the artifact's fallback when nothing is promoted yet) trains one on clean data, resumable like any training.
 */
export async function prepareModel(deps: ActivityDeps, input: PrepareModelInput): Promise<PreparedModel> {
  const started = performance.now();
  const { spec, dataset } = input;
  const backend = await ensureBackend(deps, spec);
  const shape = {
    height: dataset.imageShape[0],
    width: dataset.imageShape[1],
    channels: dataset.imageShape[2],
    numClasses: dataset.counts.classes,
  };
  const source = spec.model.source;
  const done = (model: ModelRef, origin: PreparedModel['origin'], fellBack = false): PreparedModel => ({
    model,
    origin,
    fellBack,
    seconds: (performance.now() - started) / 1000,
    backend,
  });

  if (source.kind === 'train-baseline') {
    return done(await trainBaseline(deps, input, source, backend), 'trained-baseline');
  }
  if (source.kind === 'artifact') {
    const paths = artifactPaths(spec.artifacts);
    let ref: ModelRef | undefined;
    if (source.ref === 'production') {
      const pointer = await readPointer(deps.store, spec);
      if (pointer) ref = { uri: pointer.uri, version: pointer.version };
    } else {
      const uri = formatS3Uri(paths.bucket, paths.version(source.ref));
      if (await deps.store.exists(paths.bucket, `${paths.version(source.ref)}model.json`)) {
        ref = { uri, version: source.ref };
      }
    }
    if (!ref) {
      const what =
        source.ref === 'production'
          ? `no production model at s3://${paths.bucket}/${paths.pointer}`
          : `no version ${source.ref} at s3://${paths.bucket}/${paths.version(source.ref)}`;
      if (!source.fallback) {
        throw fail(Failure.NotFound, `model.source: ${what}; set model.source.fallback: train-baseline to train one`);
      }
      return done(await trainBaseline(deps, input, source.fallback, backend), 'trained-baseline', true);
    }
    await check(deps, ref, shape);
    return done(ref, 'artifact');
  }
  if (source.kind === 's3') {
    const ref = { uri: source.uri.endsWith('/') ? source.uri : `${source.uri}/` };
    await check(deps, ref, shape);
    return done(ref, 's3');
  }
  // A local folder exists on this worker only: copy it into the store so every worker reads the same model.
  const model = await readModel(deps.store, { uri: source.path });
  try {
    checkModelFits(model, shape, source.path);
    const { workflowId } = execution();
    const { files: _files, ...ref } = await writeModel(
      deps.store,
      model,
      spec.artifacts.bucket,
      `${workPrefix(workflowId)}baseline/`,
    );
    return done(ref, 'folder');
  } finally {
    model.dispose();
  }
}

async function check(
  deps: ActivityDeps,
  ref: ModelRef,
  shape: { height: number; width: number; channels: number; numClasses: number },
): Promise<void> {
  const model = await readModel(deps.store, ref);
  try {
    checkModelFits(model, shape, ref.uri);
  } finally {
    model.dispose();
  }
}

/** A fresh model of the spec's architecture for the dataset's shape. The caller owns it. */
export function buildModel(
  spec: Pick<Spec, 'model'>,
  shape: [number, number, number],
  numClasses: number,
  seed: number,
) {
  return spec.model.architecture === 'small-resnet'
    ? buildSmallResNet({ inputShape: shape, numClasses, seed })
    : buildReferenceCnn({ inputShape: shape, numClasses, seed });
}

async function trainBaseline(
  deps: ActivityDeps,
  input: PrepareModelInput,
  budget: TrainBaselineSource,
  backend: PreparedModel['backend'] & string,
): Promise<ModelRef> {
  const { spec, dataset } = input;
  const { workflowId, temporalRunId } = execution();
  const prefix = workPrefix(workflowId);
  const bucket = spec.artifacts.bucket;
  await deps.store.ensureBucket(bucket);
  const train: ImageDataset = await openSplit(deps, dataset, spec, 'train', budget.trainSize ?? spec.dataset.trainSize);
  let model: tf.LayersModel | undefined;
  try {
    model = buildModel(spec, dataset.imageShape, dataset.counts.classes, budget.seed);
    await runTraining({
      deps,
      model,
      train,
      config: baselineConfig(budget),
      place: { bucket, prefix: `${prefix}baseline/checkpoints/` },
      checkpointEvery: spec.training.checkpointEveryBatches,
      backend,
      threads: spec.compute.threads,
      workflowId,
      temporalRunId,
      reportProgress: false,
    });
    const { files: _files, ...ref } = await writeModel(deps.store, model, bucket, `${prefix}baseline/`, {
      architecture: spec.model.architecture,
    });
    return ref;
  } finally {
    model?.dispose();
  }
}
