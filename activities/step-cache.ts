/**
 * Step caching: a stage's output is stored under a key made of everything that determines it (dataset content
 * hashes, the model's weight-file hashes, the stage's part of the spec, the package version) and reused by a
 * later run whose key matches, e.g. a nightly run on an unchanged production model skips its baseline evaluation.
 *
 * Entries live in the object store, `s3://<artifacts.bucket>/cache/steps/<stage>/<sha256 of the key>.json`
 * (one PUT, so an entry is whole or absent); an entry that does not parse is ignored and rewritten. The value is
 * returned with `cached: true`, which the workflow copies into `RunSummary.cached`. `compute.cache: false` (the
 * CLI's `--no-cache`) neither reads nor writes entries.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { Metrics, PreparedModel } from '../schemas/payloads';
import type { DatasetRef, EvaluateInput, PrepareModelInput } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { parseS3Uri } from '../storage/object-store';
import type { ActivityDeps } from './deps';
import { readModelFiles, sha256 } from '../artifacts/store';

/** Bumped when the meaning of a cached output changes without a package version change. */
const FORMAT = 1;

export const stepCacheKey = (stage: string, hex: string) => `cache/steps/${stage}/${hex}.json`;

/** The SHA-256 of a canonical JSON form of `parts` (object keys sorted), naming one cache entry. */
export function keyHash(parts: unknown): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What a dataset's content is, independent of where a worker cached it. */
const datasetIdentity = (d: DatasetRef) => ({ format: d.format, sha256s: d.sha256s, counts: d.counts });

/** The model's weight files by name and SHA-256 (model.json and every weights file it names). */
export async function modelHash(deps: ActivityDeps, uri: string): Promise<string | undefined> {
  if (!uri.startsWith('s3://')) return undefined; // a local folder can change under the same path
  parseS3Uri(uri, { field: 'model uri', requireKey: false });
  const files = await readModelFiles(deps.store, uri);
  return keyHash(Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, sha256(bytes)])));
}

/**
 * Returns the cached output of `stage` for `parts`, or runs `run` and stores its output. `parts` undefined means
 * "not cacheable this time" (e.g. a model outside the object store).
 */
export async function cachedStep<T extends object>(
  deps: ActivityDeps,
  spec: Spec,
  stage: string,
  schema: z.ZodType<T>,
  parts: unknown,
  run: () => Promise<T>,
  /** Checks a hit still points at something that exists (e.g. a model's files). */
  stillValid: (value: T) => Promise<boolean> = async () => true,
): Promise<T> {
  if (!spec.compute.cache || parts === undefined) return run();
  const bucket = spec.artifacts.bucket;
  const key = stepCacheKey(stage, keyHash({ format: FORMAT, stage, packageVersion: deps.packageVersion, parts }));
  const hit = await deps.store
    .getJson<{ value?: unknown }>(bucket, key)
    .then((entry) => schema.safeParse(entry?.value))
    .catch(() => undefined);
  if (hit?.success && (await stillValid(hit.data).catch(() => false))) return { ...hit.data, cached: true };
  const value = await run();
  const { cached: _cached, ...stored } = value as T & { cached?: boolean };
  // A cache that cannot be written costs the next run time, never this one its result.
  await deps.store.putJson(bucket, key, { stage, value: stored }).catch(() => undefined);
  return value;
}

/** baselineEval / benchmark: keyed on the model's weights, the dataset's content and every spec field they read. */
export async function cachedEvaluation(
  deps: ActivityDeps,
  input: EvaluateInput,
  run: () => Promise<Metrics>,
): Promise<Metrics> {
  const { spec, dataset, role } = input;
  const weights = await modelHash(deps, input.model.uri).catch(() => undefined);
  const parts = weights && {
    role,
    weights,
    dataset: datasetIdentity(dataset),
    subset: { ...spec.dataset, source: undefined, sha256: undefined },
    evaluation: spec.evaluation,
    gateAttack: spec.gate.attack,
    seed: spec.training.seed,
    backend: spec.compute.backend,
  };
  return cachedStep(deps, spec, role === 'baseline' ? 'baseline-eval' : 'benchmark', Metrics, parts, run);
}

/** prepareModel for `train-baseline` (the expensive kind): keyed on the dataset's content and the model spec. */
export async function cachedPreparation(
  deps: ActivityDeps,
  input: PrepareModelInput,
  run: () => Promise<PreparedModel>,
): Promise<PreparedModel> {
  const { spec, dataset } = input;
  const parts =
    spec.model.source.kind === 'train-baseline'
      ? {
          dataset: datasetIdentity(dataset),
          subset: { ...spec.dataset, source: undefined, sha256: undefined },
          model: spec.model,
          seed: spec.training.seed,
          backend: spec.compute.backend,
        }
      : undefined;
  return cachedStep(
    deps,
    spec,
    'preparing-model',
    PreparedModel,
    parts,
    run,
    async (p) => (await modelHash(deps, p.model.uri)) !== undefined,
  );
}
