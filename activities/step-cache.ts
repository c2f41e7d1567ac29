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
import type { DatasetRef, EvaluateInput, PrepareModelInput, StoreEvaluationInput } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { parseS3Uri } from '../storage/object-store';
import type { ActivityDeps } from './deps';
import { readModelFiles, sha256 } from '../artifacts/store';

/** What the cache reads of the spec: whether it is on, and the bucket its entries live in. */
type CacheSpec = Pick<Spec, 'compute' | 'artifacts'>;

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
/** The store key of `stage`'s entry for `parts`. */
function entryKey(deps: ActivityDeps, stage: string, parts: unknown): string {
  return stepCacheKey(stage, keyHash({ format: FORMAT, stage, packageVersion: deps.packageVersion, parts }));
}

/** The cached output of `stage` for `parts` (marked `cached: true`), or undefined on a miss or a broken entry. */
async function readStep<T extends object>(
  deps: ActivityDeps,
  spec: CacheSpec,
  stage: string,
  schema: z.ZodType<T>,
  parts: unknown,
  stillValid: (value: T) => Promise<boolean> = async () => true,
): Promise<T | undefined> {
  if (!spec.compute.cache || parts === undefined) return undefined;
  const hit = await deps.store
    .getJson<{ value?: unknown }>(spec.artifacts.bucket, entryKey(deps, stage, parts))
    .then((entry) => schema.safeParse(entry?.value))
    .catch(() => undefined);
  if (hit?.success && (await stillValid(hit.data).catch(() => false))) return { ...hit.data, cached: true };
  return undefined;
}

/** Stores `value` as `stage`'s output for `parts`; a cache that cannot be written costs the next run time only. */
async function writeStep(
  deps: ActivityDeps,
  spec: CacheSpec,
  stage: string,
  parts: unknown,
  value: object,
): Promise<void> {
  if (!spec.compute.cache || parts === undefined) return;
  const { cached: _cached, ...stored } = value as { cached?: boolean };
  await deps.store.putJson(spec.artifacts.bucket, entryKey(deps, stage, parts), { stage, value: stored }).catch(() => {
    // see above
  });
}

/**
 * Returns the cached output of `stage` for `parts`, or runs `run` and stores its output. `parts` undefined means
 * "not cacheable this time" (e.g. a model outside the object store).
 */
export async function cachedStep<T extends object>(
  deps: ActivityDeps,
  spec: CacheSpec,
  stage: string,
  schema: z.ZodType<T>,
  parts: unknown,
  run: () => Promise<T>,
  /** Checks a hit still points at something that exists (e.g. a model's files). */
  stillValid: (value: T) => Promise<boolean> = async () => true,
): Promise<T> {
  const hit = await readStep(deps, spec, stage, schema, parts, stillValid);
  if (hit) return hit;
  const value = await run();
  await writeStep(deps, spec, stage, parts, value);
  return value;
}

/** What determines an evaluation's metrics: the model's weights, the dataset's content and every spec field it reads. */
async function evaluationParts(deps: ActivityDeps, input: EvaluateInput) {
  const { spec, dataset, role } = input;
  const weights = await modelHash(deps, input.model.uri).catch(() => undefined);
  return (
    weights && {
      role,
      weights,
      dataset: datasetIdentity(dataset),
      subset: { ...spec.dataset, source: undefined, sha256: undefined },
      evaluation: spec.evaluation,
      gateAttack: spec.gate.attack,
      seed: spec.training.seed,
      backend: spec.compute.backend,
    }
  );
}

const evaluationStage = (input: EvaluateInput) => (input.role === 'baseline' ? 'baseline-eval' : 'benchmark');

/** baselineEval / benchmark (one activity, runs recorded before the fan-out): cached as a whole. */
export async function cachedEvaluation(
  deps: ActivityDeps,
  input: EvaluateInput,
  run: () => Promise<Metrics>,
): Promise<Metrics> {
  const metrics = await cachedStep(
    deps,
    input.spec,
    evaluationStage(input),
    Metrics,
    await evaluationParts(deps, input),
    run,
  );
  if (metrics.cached) reportEvaluation(deps, input, metrics);
  return metrics;
}

/**
 * lookupEvaluation (io queue): a fanned-out evaluation's cached metrics, or null; the evaluation child workflow is
 * skipped on a hit. Same key as `cachedEvaluation`, so either path reuses the other's entries.
 */
export async function lookupEvaluation(deps: ActivityDeps, input: EvaluateInput): Promise<Metrics | null> {
  const parts = await evaluationParts(deps, input);
  const hit = await readStep(deps, input.spec, evaluationStage(input), Metrics, parts);
  // The run's accuracy gauges are this run's, computed or reused (a dashboard subtracts baseline from hardened).
  if (hit) reportEvaluation(deps, input, hit);
  return hit ?? null;
}

function reportEvaluation(deps: ActivityDeps, input: EvaluateInput, metrics: Metrics): void {
  deps.metrics?.evaluation({
    workflowId: input.workflowId,
    role: input.role,
    clean: metrics.clean,
    robust: metrics.robust.map((r) => ({ attack: r.attack, accuracy: r.accuracy })),
  });
}

/** storeEvaluation (io queue): keeps a fanned-out evaluation's metrics for later runs with the same inputs. */
export async function storeEvaluation(deps: ActivityDeps, input: StoreEvaluationInput): Promise<void> {
  const { metrics, ...evaluation } = input;
  await writeStep(deps, input.spec, evaluationStage(evaluation), await evaluationParts(deps, evaluation), metrics);
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
          threads: spec.compute.threads,
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
