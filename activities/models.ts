import type * as tf from '@tensorflow/tfjs';
import {
  PointerError,
  loadStoredModel,
  readPointer as readPointerAt,
  writeModel as writeStoredModel,
} from '../artifacts/store';
import { artifactPaths } from '../artifacts/store';
import type { ProductionPointer } from '../artifacts/store';
import { Failure, fail } from '../schemas/failures';
import type { ModelRef } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { ObjectNotFoundError, formatS3Uri } from '../storage/object-store';
import type { ObjectStore } from '../storage/object-store';
import { ModelFileError, loadModel } from '../tensor/models/io';
import { validateModelForDataset } from '../tensor/models/validate';

// The artifact layout (keys, pointer, model files) belongs to artifacts/store.ts; this file translates its errors
// into the activities' failure vocabulary.

/**
 * Loads a model from `s3://bucket/prefix/` (model.json + the weight files its manifest names) or a local folder.
 * The caller owns (disposes) the model. A model that is missing or does not parse is an InvalidModel/NotFound
 * failure naming the file.
 */
export async function readModel(store: ObjectStore, ref: ModelRef): Promise<tf.LayersModel> {
  try {
    if (!ref.uri.startsWith('s3://')) return await loadModel(ref.uri.replace(/^file:\/\//, ''));
    return await loadStoredModel(store, ref.uri);
  } catch (err) {
    if (err instanceof ModelFileError) throw fail(Failure.InvalidModel, `model ${ref.uri}: ${err.message}`);
    if (err instanceof ObjectNotFoundError) throw fail(Failure.NotFound, `model ${ref.uri}: ${err.message}`);
    throw err;
  }
}

/** Writes `model` under `s3://bucket/prefix/` and returns its reference (with `extra`) and every file's digest. */
export async function writeModel(
  store: ObjectStore,
  model: tf.LayersModel,
  bucket: string,
  prefix: string,
  extra: Partial<ModelRef> = {},
): Promise<ModelRef & { files: Record<string, { sha256: string; bytes: number }> }> {
  const { uri, sha256, files } = await writeStoredModel(store, model, bucket, prefix);
  return { uri, sha256, ...extra, files };
}

/** Checks a model fits the dataset; a mismatch is a permanent InvalidModel failure with both shapes. */
export function checkModelFits(
  model: tf.LayersModel,
  shape: { height: number; width: number; channels: number; numClasses: number },
  uri: string,
): string[] {
  try {
    return validateModelForDataset(model, shape).warnings;
  } catch (err) {
    throw fail(Failure.InvalidModel, `model ${uri}: ${(err as Error).message}`);
  }
}

/**
 * The spec's production pointer, or undefined when nothing was promoted yet. A pointer that does not parse or
 * names a model outside the model's `versions/` folder is a permanent InvalidModel failure.
 */
export async function readPointer(
  store: ObjectStore,
  spec: Pick<Spec, 'artifacts'>,
): Promise<ProductionPointer | undefined> {
  const p = artifactPaths(spec.artifacts);
  try {
    return await readPointerAt(store, formatS3Uri(p.bucket, p.pointer));
  } catch (err) {
    if (err instanceof PointerError) throw fail(Failure.InvalidModel, err.message);
    throw err;
  }
}
