import * as tf from '@tensorflow/tfjs';
import { lstat, mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { MAX_MODEL_PARAMS, topologyParams } from './budget';

/** The files of a saved model by name: `model.json` and the weight files its manifest lists (`weights.bin`). */
export type ModelFiles = Record<string, Uint8Array>;

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** A saved model that cannot be read back; `file` names the offending file (a path or a name in a byte map). */
export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** Bytes a manifest entry occupies in the weight data, or undefined for strings (variable length). */
function entryBytes(spec: tf.io.WeightsManifestEntry): number | undefined {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  if (dtype === 'string') return undefined;
  const size = BYTES[dtype];
  if (size === undefined) return undefined;
  return spec.shape.reduce((a, b) => a * b, 1) * size;
}

/**
 * Serialises `model` to the TensorFlow.js layers format exactly as tfjs-node's `file://` handler writes it:
 * `model.json` (topology + one manifest group whose path is `weights.bin`) and `weights.bin` (all weights,
 * concatenated). Needs no tfjs-node. The model is not changed; the caller keeps owning it.
 */
export async function saveModelToBytes(model: tf.LayersModel): Promise<ModelFiles> {
  let files: ModelFiles | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('binary model topology is not supported');
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
      };
      if (artifacts.trainingConfig != null) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.signature != null) modelJson.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata != null) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      const data = artifacts.weightData;
      const weights =
        data === undefined
          ? new ArrayBuffer(0)
          : Array.isArray(data)
            ? tf.io.CompositeArrayBuffer.join(data)
            : (data as ArrayBuffer);
      files = {
        [MODEL_JSON]: new TextEncoder().encode(JSON.stringify(modelJson)),
        [WEIGHTS_BIN]: new Uint8Array(weights),
      };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (!files) throw new Error('model.save did not call the save handler');
  return files;
}

/**
 * The one path-safety rule for the files of a saved model: a name listed in a weightsManifest (or written beside
 * model.json) is a plain relative name inside the model's folder: no absolute path, no `..` or `.` segment, no
 * backslash, no empty segment, only `A-Z a-z 0-9 . _ -` and `/`. A leading `./` is dropped. Returns the clean
 * name; anything else is a {@link ModelFileError} on `where` (the model.json that listed it).
 */
export function modelFileName(listed: string, where: string): string {
  const name = String(listed).replace(/^(\.\/)+/, '');
  const segments = name.split('/');
  if (
    name === '' ||
    name.length > 255 ||
    !/^[A-Za-z0-9._/-]+$/.test(name) ||
    segments.some((s) => s === '' || s === '.' || s === '..')
  ) {
    throw new ModelFileError(where, `weightsManifest names '${listed}'; expected a file name inside the model folder`);
  }
  return name;
}

/** The weight paths a model.json lists, as written (check each with {@link modelFileName}). */
export function weightPathsOf(modelJson: Uint8Array, where: string): string[] {
  return parseModelJson(modelJson, where).weightsManifest.flatMap((g) => g.paths.map(String));
}

function parseModelJson(bytes: Uint8Array | undefined, where: string): tf.io.ModelJSON {
  if (bytes === undefined) throw new ModelFileError(where, 'missing');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ModelFileError(where, `not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (json === null || typeof json !== 'object' || !('modelTopology' in json) || json.modelTopology == null) {
    throw new ModelFileError(where, 'has no modelTopology; expected a TensorFlow.js layers model.json');
  }
  const manifest = (json as { weightsManifest?: unknown }).weightsManifest;
  if (
    !Array.isArray(manifest) ||
    manifest.some((g) => g === null || typeof g !== 'object' || !Array.isArray(g.paths) || !Array.isArray(g.weights))
  ) {
    throw new ModelFileError(where, 'has no valid weightsManifest (expected [{ paths: [...], weights: [...] }])');
  }
  return json as tf.io.ModelJSON;
}

/**
 * Builds a model from the files of {@link saveModelToBytes} (or tfjs-node's `file://` layout, including several
 * weight shards). `read(name)` returns a file's bytes or undefined when it is absent; `where(name)` says how to
 * name it in errors. Errors name the file: a missing or corrupt model.json, a missing weight file, or weight
 * files whose total size differs from what the manifest describes. The caller owns the returned model.
 */
async function loadFromFiles(
  read: (name: string) => Promise<Uint8Array | undefined>,
  where: (name: string) => string,
): Promise<tf.LayersModel> {
  const modelJson = parseModelJson(await read(MODEL_JSON), where(MODEL_JSON));
  // Before tfjs builds (and allocates) anything: what would this topology allocate?
  const params = topologyParams(modelJson.modelTopology);
  if (!(params <= MAX_MODEL_PARAMS)) {
    throw new ModelFileError(
      where(MODEL_JSON),
      Number.isNaN(params)
        ? 'has a layer whose parameter count cannot be bounded from its configuration; refused'
        : `its topology has ${params} parameters, over the budget of ${MAX_MODEL_PARAMS}; refused before building`,
    );
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  const names: string[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const listed of group.paths) {
      const path = modelFileName(listed, where(MODEL_JSON));
      const bytes = await read(path);
      if (bytes === undefined) {
        throw new ModelFileError(where(path), `missing (listed in the weightsManifest of ${where(MODEL_JSON)})`);
      }
      parts.push(bytes);
      names.push(path);
    }
    specs.push(...group.weights);
  }
  const have = parts.reduce((n, p) => n + p.byteLength, 0);
  const sizes = specs.map(entryBytes);
  if (sizes.every((s) => s !== undefined)) {
    const want = sizes.reduce((a, b) => a + b, 0);
    if (have !== want) {
      throw new ModelFileError(
        names.map(where).join(' + ') || where(WEIGHTS_BIN),
        `${have} bytes of weights but ${where(MODEL_JSON)} describes ${specs.length} weights totalling ${want} bytes`,
      );
    }
  }
  const weightData = new Uint8Array(have);
  let offset = 0;
  for (const p of parts) {
    weightData.set(p, offset);
    offset += p.byteLength;
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    weightSpecs: specs,
    weightData: weightData.buffer,
  };
  if (modelJson.trainingConfig != null) artifacts.trainingConfig = modelJson.trainingConfig;
  if (modelJson.userDefinedMetadata != null) artifacts.userDefinedMetadata = modelJson.userDefinedMetadata;
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    throw new ModelFileError(where(MODEL_JSON), `cannot build the model: ${(err as Error).message}`, { cause: err });
  }
}

/** Loads a model from a file map as returned by {@link saveModelToBytes}. The caller owns (disposes) the model. */
export async function loadModelFromBytes(files: ModelFiles): Promise<tf.LayersModel> {
  return loadFromFiles(
    async (name) => (Object.hasOwn(files, name) ? files[name] : undefined),
    (name) => name,
  );
}

/**
 * Saves `model` into folder `dir` (created if needed) as `model.json` + `weights.bin`, the layout of tfjs-node's
 * `file://` handler. Each file is written to a temporary name and renamed, so a crash never leaves a half-written
 * file under the final name. Returns the paths written and their total size.
 */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<{ files: string[]; bytes: number }> {
  const files = await saveModelToBytes(model);
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  let bytes = 0;
  // Weights first, model.json last: a reader that finds model.json finds its weights too.
  for (const name of [WEIGHTS_BIN, MODEL_JSON]) {
    const path = join(dir, name);
    await writeFile(`${path}.tmp`, files[name]);
    await rename(`${path}.tmp`, path);
    written.push(path);
    bytes += files[name].byteLength;
  }
  return { files: written, bytes };
}

/** The largest model.json read (a topology and a manifest; tempered's are a few KB). */
export const MAX_MODEL_JSON_BYTES = 16 * 1024 * 1024;

/**
 * Reads one file of a model folder with checks, before any byte is read: it must be a regular file (a link is
 * followed only when it stays inside the folder), so a FIFO cannot hang the reader and `/dev/zero` cannot feed
 * it forever; and it may not exceed `maxBytes`. Undefined when the file does not exist.
 */
async function readModelFile(dir: string, name: string, maxBytes: number): Promise<Uint8Array | undefined> {
  const path = join(dir, name);
  let info = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!info) return undefined;
  if (info.isSymbolicLink()) {
    const [real, root] = await Promise.all([realpath(path), realpath(dir)]);
    if (!real.startsWith(root + sep))
      throw new ModelFileError(path, `links outside the model folder (to ${real}); refused`);
    info = await stat(real);
  }
  if (!info.isFile())
    throw new ModelFileError(path, 'is not a regular file (a device, FIFO, socket or folder); refused');
  if (info.size > maxBytes)
    throw new ModelFileError(path, `is ${info.size} bytes, over the limit of ${maxBytes}; refused`);
  return new Uint8Array(await readFile(path));
}

/**
 * Loads a model saved by {@link saveModel} (or by tfjs-node's `file://` handler) from folder `dir`. Every file is
 * checked before it is read (regular, inside the folder, within size), and the topology's parameter count
 * against {@link MAX_MODEL_PARAMS} before the model is built.
 */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  let weightBytes = 0;
  return loadFromFiles(
    async (name) => {
      if (name === MODEL_JSON) return readModelFile(dir, name, MAX_MODEL_JSON_BYTES);
      const bytes = await readModelFile(dir, name, MAX_MODEL_PARAMS * 4 - weightBytes);
      weightBytes += bytes?.byteLength ?? 0;
      return bytes;
    },
    (name) => join(dir, name),
  );
}
