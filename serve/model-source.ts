/**
 * Where the served model comes from: a local folder, a fixed S3 prefix, or the production pointer that promotion
 * moves (its layout and checks: artifacts/store.ts). The server polls `fingerprint()` and calls `load()` when it changes.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ProductionPointer } from '../artifacts/store';
import { DEFAULT_ARTIFACTS, loadStoredModel, pointerUri, readPointer as readPointerAt } from '../artifacts/store';
import type { ObjectStore } from '../storage/object-store';
import { loadModel } from '../tensor/models/io';

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

/** Where promotion keeps the pointer of `modelName` by default (the spec's artifacts defaults). */
export function defaultPointerUri(
  modelName: string,
  bucket = DEFAULT_ARTIFACTS.bucket,
  prefix = DEFAULT_ARTIFACTS.prefix,
): string {
  return pointerUri({ bucket, prefix, modelName });
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
export const loadModelFromS3 = loadStoredModel;

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

/**
 * Reads and checks the production pointer (artifacts/store.ts); errors name it: missing, unparsable, or naming a
 * model outside its `versions/` folder.
 */
export async function readPointer(store: ObjectStore, pointerUri: string): Promise<ProductionPointer> {
  const pointer = await readPointerAt(store, pointerUri);
  if (!pointer) throw new Error(`${pointerUri}: no production pointer (has a model been promoted yet?)`);
  return pointer;
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
