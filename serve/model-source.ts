/**
 * Where the served model comes from: a local folder, a fixed S3 prefix, or the production pointer
 * (`s3://<bucket>/<prefix>/<modelName>/production.json` = `{ "version": "v3", "uri": "s3://…/versions/v3/" }`)
 * that promotion moves. The server polls `fingerprint()` and calls `load()` when it changes.
 */
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { MODEL_JSON, loadModel, loadModelFromBytes } from '../tensor/models/io';
import type { ModelFiles } from '../tensor/models/io';
import type { ObjectStore } from '../storage/object-store';
import { ObjectNotFoundError, parseS3Uri } from '../storage/object-store';

/** A model ready to answer, and what it is. The server owns `model` and disposes it when it is replaced. */
export interface LoadedModel {
  model: tf.LayersModel;
  version: string;
  uri: string;
  /** Class names, when the pointer or the model's metadata gives them. */
  labels?: string[];
}

export interface ModelSource {
  /** For logs: what this source reads. */
  readonly description: string;
  /**
   * A cheap string that changes when a different model should be served (the pointer's version and uri), or
   * undefined for a source that never changes.
   */
  fingerprint(): Promise<string | undefined>;
  /** Loads the current model; `fingerprint` is the value it corresponds to. */
  load(): Promise<LoadedModel & { fingerprint?: string }>;
}

/** The production pointer object the promotion step writes. Extra fields are kept (and ignored). */
export const ProductionPointer = z.looseObject({
  version: z.string().min(1),
  uri: z.string().regex(/^s3:\/\/[^/]+\/.+/, 'expected s3://bucket/prefix/ of the model version'),
  labels: z.array(z.string()).optional(),
  classNames: z.array(z.string()).optional(),
});
export type ProductionPointer = z.infer<typeof ProductionPointer>;

/** `s3://tempered/models/<name>/production.json`: where promotion keeps the pointer by default. */
export function defaultPointerUri(modelName: string, bucket = 'tempered', prefix = 'models'): string {
  return `s3://${bucket}/${prefix}/${modelName}/production.json`;
}

function labelsFromModel(model: tf.LayersModel): string[] | undefined {
  const meta = (model as unknown as { getUserDefinedMetadata?: () => unknown }).getUserDefinedMetadata?.() as
    { classNames?: unknown; labels?: unknown } | undefined;
  const names = meta?.classNames ?? meta?.labels;
  return Array.isArray(names) && names.every((n) => typeof n === 'string') ? names : undefined;
}

/** A model saved in a folder (`model.json` + `weights.bin`). Never changes while served. */
export function folderSource(dir: string, version = 'local'): ModelSource {
  return {
    description: dir,
    fingerprint: async () => undefined,
    async load() {
      const model = await loadModel(dir);
      return { model, version, uri: dir, labels: labelsFromModel(model) };
    },
  };
}

/** Reads `model.json` and every weight file its manifest lists under `s3://bucket/prefix/`. */
export async function loadModelFromS3(store: ObjectStore, uri: string): Promise<tf.LayersModel> {
  const { bucket, key } = parseS3Uri(uri, { requireKey: false, field: 'model uri' });
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const get = async (name: string) => {
    try {
      return new Uint8Array(await store.getBytes(bucket, `${prefix}${name}`));
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new Error(`s3://${bucket}/${prefix}${name}: no such object`);
      throw err;
    }
  };
  const files: ModelFiles = { [MODEL_JSON]: await get(MODEL_JSON) };
  let manifest: { paths?: unknown }[] = [];
  try {
    manifest =
      (JSON.parse(new TextDecoder().decode(files[MODEL_JSON])) as { weightsManifest?: typeof manifest })
        .weightsManifest ?? [];
  } catch {
    // loadModelFromBytes names the broken model.json.
  }
  for (const group of Array.isArray(manifest) ? manifest : []) {
    for (const p of Array.isArray(group?.paths) ? group.paths : []) {
      const name = String(p).replace(/^(\.\/)+/, '');
      if (name && !name.includes('..') && !(name in files)) files[name] = await get(name);
    }
  }
  return loadModelFromBytes(files);
}

/** A model at a fixed S3 prefix. Never changes while served. */
export function s3FolderSource(store: ObjectStore, uri: string): ModelSource {
  return {
    description: uri,
    fingerprint: async () => undefined,
    async load() {
      const model = await loadModelFromS3(store, uri);
      return { model, version: uri.replace(/\/+$/, '').split('/').pop() ?? uri, uri, labels: labelsFromModel(model) };
    },
  };
}

/** Reads and validates the production pointer; errors name it. */
export async function readPointer(store: ObjectStore, pointerUri: string): Promise<ProductionPointer> {
  const { bucket, key } = parseS3Uri(pointerUri, { field: '--pointer' });
  let raw: Buffer;
  try {
    raw = await store.getBytes(bucket, key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      throw new Error(`${pointerUri}: no production pointer (has a model been promoted yet?)`, { cause: err });
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new Error(`${pointerUri}: expected JSON { "version": "v3", "uri": "s3://…/" }, got unparsable text`);
  }
  const parsed = ProductionPointer.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${pointerUri}: ${issue.path.join('.') || '(pointer)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** The model the production pointer names; changes when promotion moves the pointer. */
export function pointerSource(store: ObjectStore, pointerUri: string): ModelSource {
  const fp = (p: ProductionPointer) => `${p.version} ${p.uri}`;
  return {
    description: pointerUri,
    fingerprint: async () => fp(await readPointer(store, pointerUri)),
    async load() {
      const pointer = await readPointer(store, pointerUri);
      const model = await loadModelFromS3(store, pointer.uri);
      return {
        model,
        version: pointer.version,
        uri: pointer.uri,
        labels: pointer.labels ?? pointer.classNames ?? labelsFromModel(model),
        fingerprint: fp(pointer),
      };
    },
  };
}
