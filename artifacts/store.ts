// The artifact layout has one owner: this module. Prepare, promote and serve ask it for keys, the production
// pointer and the files of a stored model; none of them knows how the keys are spelt.
//
//   s3://<bucket>/<prefix>/<modelName>/versions/vN/        model.json, weights, manifest.json (written last)
//   s3://<bucket>/<prefix>/<modelName>/production.json     the pointer: { version, uri, runId, workflowId, … }
//   s3://<bucket>/<prefix>/<modelName>/promotions/<id>.json one reservation per promoting Temporal run
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { ProductionPointer } from '../schemas/artifacts';
import { ArtifactsSpec } from '../schemas/spec';
import type { ObjectStore } from '../storage/object-store';
import { ObjectNotFoundError, formatS3Uri, parseS3Uri } from '../storage/object-store';
import { MAX_MODEL_PARAMS } from '../tensor/models/budget';
import {
  MAX_MODEL_JSON_BYTES,
  MODEL_JSON,
  ModelFileError,
  loadModelFromBytes,
  modelFileName,
  saveModelToBytes,
  weightPathsOf,
} from '../tensor/models/io';
import type { ModelFiles } from '../tensor/models/io';

export { ProductionPointer };

/** Where models live when nothing says otherwise: the spec's `artifacts` defaults (bucket, prefix, model name). */
export const DEFAULT_ARTIFACTS: ArtifactsSpec = ArtifactsSpec.parse({});

/** The three fields that place a model's artifacts. */
export type ArtifactPlace = Pick<ArtifactsSpec, 'bucket' | 'prefix' | 'modelName'>;

const POINTER_FILE = 'production.json';

/** Every key of a model name's artifacts. */
export function artifactPaths({ bucket, prefix, modelName }: ArtifactPlace) {
  const root = `${prefix}/${modelName}`;
  return {
    bucket,
    root,
    versions: `${root}/versions/`,
    version: (v: string) => `${root}/versions/${v}/`,
    pointer: `${root}/${POINTER_FILE}`,
    /** One small object per promoted run: makes a repeated promotion find its version again. */
    promotion: (temporalRunId: string) => `${root}/promotions/${temporalRunId}.json`,
    promotions: `${root}/promotions/`,
  };
}
export type ArtifactPaths = ReturnType<typeof artifactPaths>;

/** `s3://<bucket>/<prefix>/<modelName>/production.json`, defaults from {@link DEFAULT_ARTIFACTS}. */
export function pointerUri(place: Partial<ArtifactPlace> & Pick<ArtifactPlace, 'modelName'>): string {
  const p = artifactPaths({ ...DEFAULT_ARTIFACTS, ...place });
  return formatS3Uri(p.bucket, p.pointer);
}

/** A production pointer that cannot be trusted: unparsable, malformed, or naming a model outside its versions. */
export class PointerError extends Error {
  override readonly name = 'PointerError';
}

/** The folder a pointer at `pointerUri` may name versions in: `s3://<bucket>/<…>/versions/`. */
export function versionsFolderOf(pointerUri: string): string {
  const { bucket, key } = parseS3Uri(pointerUri, { field: 'pointer uri' });
  if (!key.endsWith(`/${POINTER_FILE}`)) {
    throw new PointerError(`${pointerUri}: expected a pointer named …/<modelName>/${POINTER_FILE}`);
  }
  return formatS3Uri(bucket, `${key.slice(0, -POINTER_FILE.length)}versions/`);
}

/** Checks a parsed pointer names a version under its own `versions/` folder; returns it typed. */
export function checkPointer(pointerUri: string, json: unknown): ProductionPointer {
  const parsed = ProductionPointer.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PointerError(`${pointerUri}: ${issue.path.join('.') || '(pointer)'}: ${issue.message}`);
  }
  const expected = `${versionsFolderOf(pointerUri)}${parsed.data.version}/`;
  if (parsed.data.uri !== expected) {
    throw new PointerError(
      `${pointerUri}: uri ${JSON.stringify(parsed.data.uri)} is not this model's version ${parsed.data.version} ` +
        `(expected ${expected}); refusing a pointer that names a model outside its versions/ folder`,
    );
  }
  return parsed.data;
}

/**
 * Reads and checks the production pointer at `pointerUri`; undefined when none exists yet. A pointer that does
 * not parse or names a model outside `<prefix>/<modelName>/versions/` is a {@link PointerError} naming it.
 */
export async function readPointer(store: ObjectStore, pointerUri: string): Promise<ProductionPointer | undefined> {
  const { bucket, key } = parseS3Uri(pointerUri, { field: 'pointer uri' });
  let raw: Buffer;
  try {
    raw = await store.getBytes(bucket, key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new PointerError(`${pointerUri}: expected JSON { "version": "v3", "uri": "s3://…/versions/v3/" }`);
  }
  return checkPointer(pointerUri, json);
}

/** Moves the production pointer of `place` to `version`. */
export async function writePointer(
  store: ObjectStore,
  place: ArtifactPlace,
  fields: { version: string; runId?: string; workflowId?: string; promotedAt?: string },
): Promise<ProductionPointer> {
  const p = artifactPaths(place);
  const pointer = checkPointer(formatS3Uri(p.bucket, p.pointer), {
    ...fields,
    uri: formatS3Uri(p.bucket, p.version(fields.version)),
  });
  await store.putJson(p.bucket, p.pointer, pointer);
  return pointer;
}

/** The files of a stored model at `s3://bucket/prefix/`: model.json and every weight file its manifest lists. */
export async function readModelFiles(store: ObjectStore, uri: string): Promise<ModelFiles> {
  const { bucket, key } = parseS3Uri(uri, { field: 'model uri', requireKey: false });
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  let budget = MAX_MODEL_PARAMS * 4;
  const get = async (name: string) => {
    try {
      // The size first: an object over the model budget is not downloaded.
      const { size } = await store.stat(bucket, `${prefix}${name}`);
      const cap = name === MODEL_JSON ? MAX_MODEL_JSON_BYTES : budget;
      if (size > cap) {
        throw new ModelFileError(`${formatS3Uri(bucket, prefix)}${name}`, `is ${size} bytes, over the limit of ${cap}`);
      }
      if (name !== MODEL_JSON) budget -= size;
      return new Uint8Array(await store.getBytes(bucket, `${prefix}${name}`));
    } catch (err) {
      if (err instanceof ObjectNotFoundError)
        throw new ModelFileError(`${formatS3Uri(bucket, prefix)}${name}`, 'missing');
      throw err;
    }
  };
  const files: ModelFiles = { [MODEL_JSON]: await get(MODEL_JSON) };
  for (const listed of weightPathsOf(files[MODEL_JSON], `${formatS3Uri(bucket, prefix)}${MODEL_JSON}`)) {
    const name = modelFileName(listed, `${formatS3Uri(bucket, prefix)}${MODEL_JSON}`);
    if (!Object.hasOwn(files, name)) files[name] = await get(name);
  }
  return files;
}

/** Builds the model stored at `s3://bucket/prefix/`. The caller owns (disposes) it. Errors name the file. */
export async function loadStoredModel(store: ObjectStore, uri: string): Promise<tf.LayersModel> {
  return loadModelFromBytes(await readModelFiles(store, uri));
}

export type WrittenModel = { uri: string; sha256: string; files: Record<string, { sha256: string; bytes: number }> };

/**
 * Writes model files under `s3://bucket/prefix/`: weights first, model.json last, so a reader that finds
 * model.json finds its weights. Returns the folder's uri, the SHA-256 of model.json and of every file.
 */
export async function writeModelFiles(
  store: ObjectStore,
  files: ModelFiles,
  bucket: string,
  prefix: string,
): Promise<WrittenModel> {
  const dir = prefix.endsWith('/') ? prefix : `${prefix}/`;
  await store.ensureBucket(bucket);
  const names = Object.keys(files).sort((a, b) => (a === MODEL_JSON ? 1 : b === MODEL_JSON ? -1 : a < b ? -1 : 1));
  const digests: Record<string, { sha256: string; bytes: number }> = {};
  for (const name of names) {
    await store.putBytes(bucket, `${dir}${modelFileName(name, formatS3Uri(bucket, dir))}`, files[name], {
      'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    });
    digests[name] = { sha256: sha256(files[name]), bytes: files[name].byteLength };
  }
  return { uri: formatS3Uri(bucket, dir), sha256: digests[MODEL_JSON].sha256, files: digests };
}

/** Serialises `model` and writes it with {@link writeModelFiles}. The model stays the caller's. */
export async function writeModel(
  store: ObjectStore,
  model: tf.LayersModel,
  bucket: string,
  prefix: string,
): Promise<WrittenModel> {
  return writeModelFiles(store, await saveModelToBytes(model), bucket, prefix);
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
