import { readFile } from 'node:fs/promises';
import type { PromoteInput, PromoteResult } from '../schemas/payloads';
import { Failure, fail } from '../schemas/failures';
import { ObjectNotFoundError, formatS3Uri } from '../storage/object-store';
import { ModelFileError } from '../tensor/models/io';
import { execution } from './context';
import type { ActivityDeps } from './deps';
import type { ArtifactPaths } from '../artifacts/store';
import { artifactPaths, readModelFiles, sha256, writeModelFiles, writePointer } from '../artifacts/store';
import { readPointer } from './models';

/** What a promotion records per Temporal run, written before the version's files: the key to idempotency. */
interface PromotionRecord {
  version: string;
  workflowId: string;
  runId: string;
  reservedAt: string;
}

/**
 * promoteArtifact: stores the hardened model as a new version `vN` under `<prefix>/<modelName>/versions/`, with a
 * `manifest.json` (the spec, dataset hashes, metrics before and after, backend, package version, timestamps, and
 * the SHA-256 of every file), then moves the production pointer to it when the gate passed.
 *
 * Idempotent per workflow execution: the version number is reserved in `promotions/<runId>.json` before anything
 * else is written, so a promotion repeated after a crash (or an outage of the store) finds its version again and
 * finishes it, and never makes a second one.
 */
export async function promoteArtifact(deps: ActivityDeps, input: PromoteInput): Promise<PromoteResult> {
  const { spec, decision, metrics, baseline } = input;
  const { workflowId, temporalRunId: runId } = execution(); // records keep the field name runId
  const paths = artifactPaths(spec.artifacts);
  const { bucket } = paths;
  await deps.store.ensureBucket(bucket);

  // S3 has no create-if-absent that every store honours, so two runs promoting at the same moment can reserve
  // the same number. The version's manifest says whose it is: a version completed by another run is not ours to
  // reuse, so reserve again past it (the remaining window is two runs writing model files in the same seconds).
  let record = await reserveVersion(deps, paths, workflowId, runId);
  for (let tries = 0; ; tries++) {
    const owner = await deps.store
      .getJson<{ run?: { runId?: string } }>(bucket, `${paths.version(record.version)}manifest.json`)
      .catch((err: unknown) => {
        if (err instanceof ObjectNotFoundError) return undefined;
        throw err;
      });
    if (!owner || owner.run?.runId === runId) break;
    if (tries >= 5)
      throw new Error(`could not reserve a version of ${paths.root}: ${record.version} keeps being taken`);
    await deps.store.remove(bucket, paths.promotion(runId));
    record = await reserveVersion(deps, paths, workflowId, runId);
  }
  const versionPrefix = paths.version(record.version);
  const uri = formatS3Uri(bucket, versionPrefix);

  if (!(await deps.store.exists(bucket, `${versionPrefix}manifest.json`))) {
    const files = await readModelFiles(deps.store, input.model.uri).catch((err: unknown) => {
      if (err instanceof ModelFileError) throw fail(Failure.InvalidModel, `model ${input.model.uri}: ${err.message}`);
      throw err;
    });
    const written = await writeModelFiles(deps.store, files, bucket, versionPrefix);
    const manifest = {
      tempered: { manifestVersion: 1, packageVersion: deps.packageVersion ?? (await packageVersion()) },
      model: { name: spec.artifacts.modelName, version: record.version, uri, architecture: input.model.architecture },
      run: { workflowId, runId, promotedFrom: input.model.uri },
      spec,
      dataset: input.dataset
        ? {
            source: input.dataset.source,
            format: input.dataset.format,
            sha256: input.dataset.sha256s,
            counts: input.dataset.counts,
          }
        : undefined,
      metrics: { baseline: baseline ?? null, hardened: metrics },
      gate: decision,
      backend: metrics.backend,
      createdAt: new Date().toISOString(),
      files: written.files,
    };
    // The manifest goes last: its presence says the version is complete.
    await deps.store.putJson(bucket, `${versionPrefix}manifest.json`, manifest);
  }

  let productionUri: string | undefined;
  if (decision.passed) {
    const current = await readPointer(deps.store, spec);
    // A promotion retried long after a newer version took production must not move the pointer back.
    if (current?.version !== record.version && versionNumber(current?.version) < versionNumber(record.version)) {
      await writePointer(deps.store, spec.artifacts, {
        version: record.version,
        runId,
        workflowId,
        promotedAt: new Date().toISOString(),
      });
    }
    productionUri = formatS3Uri(bucket, paths.pointer);
  }
  const serving = decision.passed ? (await readPointer(deps.store, spec))?.version === record.version : false;
  return { uri, version: record.version, promoted: serving, ...(productionUri ? { productionUri } : {}) };
}

const versionNumber = (v: string | undefined) => (v ? Number(/^v(\d+)$/.exec(v)?.[1] ?? 0) : 0);

async function reserveVersion(
  deps: ActivityDeps,
  paths: ArtifactPaths,
  workflowId: string,
  runId: string,
): Promise<PromotionRecord> {
  const key = paths.promotion(runId);
  try {
    return await deps.store.getJson<PromotionRecord>(paths.bucket, key);
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError)) throw err;
  }
  const taken = new Set<number>();
  for (const e of await deps.store.list(paths.bucket, paths.versions)) {
    const m = /\/versions\/v(\d+)\//.exec(e.key);
    if (m) taken.add(Number(m[1]));
  }
  for (let tries = 0; tries < 20; tries++) {
    // Versions reserved by promotions that crashed before writing a file still count as taken.
    const others = (await readRecords(deps, paths)).filter((r) => r.runId !== runId);
    for (const r of others) taken.add(versionNumber(r.version));
    const next = Math.max(0, ...taken) + 1;
    const record: PromotionRecord = { version: `v${next}`, workflowId, runId, reservedAt: new Date().toISOString() };
    await deps.store.putJson(paths.bucket, key, record);
    // Two runs that listed at the same moment reserved the same number: the earlier reservation keeps it (run id
    // breaks a tie), the other one takes the next number. Both see both records, so both agree.
    const rivals = (await readRecords(deps, paths)).filter((r) => r.runId !== runId && r.version === record.version);
    if (rivals.every((r) => earlier(record, r))) return record;
    taken.add(next);
  }
  throw new Error(`could not reserve a version under ${paths.root}: every number was taken by concurrent promotions`);
}

async function readRecords(deps: ActivityDeps, paths: ArtifactPaths): Promise<PromotionRecord[]> {
  const out: PromotionRecord[] = [];
  for (const e of await deps.store.list(paths.bucket, paths.promotions)) {
    const r = await deps.store.getJson<PromotionRecord>(paths.bucket, e.key).catch(() => undefined);
    if (r && /^v\d+$/.test(r.version)) out.push(r);
  }
  return out;
}

const earlier = (a: PromotionRecord, b: PromotionRecord) =>
  a.reservedAt < b.reservedAt || (a.reservedAt === b.reservedAt && a.runId < b.runId);

let cachedVersion: string | undefined;
async function packageVersion(): Promise<string> {
  if (cachedVersion) return cachedVersion;
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  cachedVersion = pkg.version;
  return cachedVersion;
}

export { sha256 };
