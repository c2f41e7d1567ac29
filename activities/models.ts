import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { Failure, fail } from '../schemas/failures';
import type { ModelRef } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { ObjectNotFoundError, formatS3Uri, parseS3Uri } from '../storage/object-store';
import type { ObjectStore } from '../storage/object-store';
import { ModelFileError, loadModel, loadModelFromBytes, saveModelToBytes } from '../tensor/models/io';
import type { ModelFiles } from '../tensor/models/io';
import { validateModelForDataset } from '../tensor/models/validate';

/** Where the artifacts of a model name live: `<prefix>/<modelName>/versions/vN/` and the production pointer. */
export function artifactPaths(spec: Spec) {
  const { bucket, prefix, modelName } = spec.artifacts;
  const root = `${prefix}/${modelName}`;
  return {
    bucket,
    root,
    versions: `${root}/versions/`,
    version: (v: string) => `${root}/versions/${v}/`,
    pointer: `${root}/production.json`,
    /** One small object per promoted run: makes a repeated promotion find its version again. */
    promotion: (temporalRunId: string) => `${root}/promotions/${temporalRunId}.json`,
  };
}

/** The production pointer object: which version serves, since when, from which run. */
export interface ProductionPointer {
  version: string;
  uri: string;
  runId: string;
  workflowId: string;
  promotedAt: string;
}

/**
 * Loads a model from `s3://bucket/prefix/` (model.json + the weight files its manifest names) or a local folder.
 * The caller owns (disposes) the model. A model that is missing or does not parse is an InvalidModel/NotFound
 * failure naming the file.
 */
export async function readModel(store: ObjectStore, ref: ModelRef): Promise<tf.LayersModel> {
  try {
    if (!ref.uri.startsWith('s3://')) return await loadModel(ref.uri.replace(/^file:\/\//, ''));
    const files = await readModelFiles(store, ref.uri);
    return await loadModelFromBytes(files);
  } catch (err) {
    if (err instanceof ModelFileError) throw fail(Failure.InvalidModel, `model ${ref.uri}: ${err.message}`);
    if (err instanceof ObjectNotFoundError) throw fail(Failure.NotFound, `model ${ref.uri}: ${err.message}`);
    throw err;
  }
}

/** The files of a stored model, by name. */
export async function readModelFiles(store: ObjectStore, uri: string): Promise<ModelFiles> {
  const { bucket, key } = parseS3Uri(uri, { field: 'model uri', requireKey: false });
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const modelJson = await store.getBytes(bucket, `${prefix}model.json`);
  const files: ModelFiles = { 'model.json': new Uint8Array(modelJson) };
  let manifest: { weightsManifest?: { paths?: string[] }[] };
  try {
    manifest = JSON.parse(modelJson.toString('utf8'));
  } catch (err) {
    throw new ModelFileError(`${uri}model.json`, `not JSON (${(err as Error).message})`);
  }
  for (const group of manifest.weightsManifest ?? []) {
    for (const path of group.paths ?? []) {
      if (path.includes('..') || path.startsWith('/')) {
        throw new ModelFileError(`${uri}model.json`, `weights path ${JSON.stringify(path)} leaves the model folder`);
      }
      files[path] = new Uint8Array(await store.getBytes(bucket, `${prefix}${path}`));
    }
  }
  return files;
}

/**
 * Writes `model` under `s3://bucket/prefix/` (weights first, model.json last, so a reader that finds model.json
 * finds its weights) and returns its reference with the SHA-256 of model.json.
 */
export async function writeModel(
  store: ObjectStore,
  model: tf.LayersModel,
  bucket: string,
  prefix: string,
  extra: Partial<ModelRef> = {},
): Promise<ModelRef & { files: Record<string, { sha256: string; bytes: number }> }> {
  const files = await saveModelToBytes(model);
  return writeModelFiles(store, files, bucket, prefix, extra);
}

export async function writeModelFiles(
  store: ObjectStore,
  files: ModelFiles,
  bucket: string,
  prefix: string,
  extra: Partial<ModelRef> = {},
): Promise<ModelRef & { files: Record<string, { sha256: string; bytes: number }> }> {
  const dir = prefix.endsWith('/') ? prefix : `${prefix}/`;
  await store.ensureBucket(bucket);
  const names = Object.keys(files).sort((a, b) => (a === 'model.json' ? 1 : b === 'model.json' ? -1 : a < b ? -1 : 1));
  const digests: Record<string, { sha256: string; bytes: number }> = {};
  for (const name of names) {
    await store.putBytes(bucket, `${dir}${name}`, files[name], {
      'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    });
    digests[name] = { sha256: sha256(files[name]), bytes: files[name].byteLength };
  }
  return { uri: formatS3Uri(bucket, dir), sha256: digests['model.json'].sha256, ...extra, files: digests };
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

/** Reads the production pointer, or undefined when nothing was promoted yet. */
export async function readPointer(store: ObjectStore, spec: Spec): Promise<ProductionPointer | undefined> {
  const p = artifactPaths(spec);
  try {
    return await store.getJson<ProductionPointer>(p.bucket, p.pointer);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
