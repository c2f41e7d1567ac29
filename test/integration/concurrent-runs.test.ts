// Many runs of one model at once on a cold worker cache: every run fetches, materialises and decodes the same
// dataset at the same moment, and promotes its own version. All complete; the versions are distinct.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { RunSummary } from '../../schemas/payloads';
import type { SpecInput } from '../../schemas/spec';
import { HARDENING_RUN } from '../../workflows/messages';
import { idxPair, writeFiles } from '../unit/tensor/data/fixtures';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';
import { spawnWorker } from '../support/workers';
import type { WorkerProcess } from '../support/workers';

const RUNS = 16;
const queues = { io: uniqueName('cc-io'), heavy: uniqueName('cc-heavy') };
const bucket = uniqueName('conc').toLowerCase().slice(0, 40);
const modelName = uniqueName('m').toLowerCase().slice(0, 30);
let client: Client;
let connection: Connection;
let workers: WorkerProcess[] = [];

/** A small IDX dataset (28×28, 10 classes) in a fresh folder: 256 train and 64 test images. */
async function tinyDataset(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tempered-tiny-idx-'));
  mkdirSync(dir, { recursive: true });
  const train = idxPair(256, 28, 28);
  const test = idxPair(64, 28, 28);
  await writeFiles(
    dir,
    {
      'train-images-idx3-ubyte': train.images,
      'train-labels-idx1-ubyte': train.labels,
      't10k-images-idx3-ubyte': test.images,
      't10k-labels-idx1-ubyte': test.labels,
    },
    true,
  );
  return dir;
}
let source: string;

/** The smallest run that still goes through every stage: 64 train images, one epoch, 16 test images. */
const tinySpec = (): SpecInput => ({
  version: 1,
  dataset: { source, trainSize: 64, testSize: 16, subset: 'first' },
  model: { source: { kind: 'train-baseline', epochs: 1, batchSize: 32, learningRate: 0.002 } },
  attack: { steps: 1, stepSize: 1 },
  epsilon: { max: 0.05, kind: 'constant' },
  training: { epochs: 1, batchSize: 32, checkpointEveryBatches: 2, learningRate: 0.002 },
  evaluation: { attacks: [{ name: 'pgd2', steps: 2, stepSize: 0.5 }], testImages: 16, epsCurve: [0.05], examples: 0 },
  gate: { minRobustAccuracy: 0, maxCleanAccuracyDrop: 1 },
  artifacts: { bucket, modelName },
  compute: { ioQueue: queues.io, heavyQueue: queues.heavy },
});

before(async () => {
  const conn = stackFromEnv();
  connection = await Connection.connect({ address: conn.temporal.address });
  client = new Client({ connection, namespace: conn.temporal.namespace });
  await storeFromEnv().ensureBucket(bucket);
  source = await tinyDataset();
  // One cold cache folder shared by the io worker and the heavy worker, as `tempered worker` shares it.
  const cacheDir = mkdtempSync(join(tmpdir(), 'tempered-cold-cache-'));
  workers = await Promise.all([
    spawnWorker({ queues, only: 'io', cacheDir, env: { TEMPERED_DATASET_ROOTS: source } }),
    spawnWorker({ queues, only: 'heavy', cacheDir, env: { TEMPERED_DATASET_ROOTS: source } }),
  ]);
});

after(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await connection?.close();
});

describe('concurrent runs of one model', () => {
  test(`${RUNS} runs started at once on a cold cache all complete with ${RUNS} distinct versions`, async () => {
    const started = Date.now();
    const handles = await Promise.all(
      Array.from({ length: RUNS }, (_, i) =>
        client.workflow.start(HARDENING_RUN, {
          workflowId: uniqueName(`cc-${i}`),
          taskQueue: queues.io,
          args: [tinySpec()],
        }),
      ),
    );
    // A hang shows as a failure with the workers' output, not as a test that never ends.
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () =>
          reject(
            new Error(
              `runs still open after 5 min; workers said:\n${workers.map((w) => w.output().slice(-4000)).join('\n---\n')}`,
            ),
          ),
        300_000,
      ).unref(),
    );
    const results = await Promise.race([
      Promise.allSettled(handles.map((h) => h.result() as Promise<RunSummary>)),
      timeout,
    ]);
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`${handles[i].workflowId}: ${String((r.reason as Error).cause ?? r.reason)}`] : [],
    );
    assert.deepEqual(failed, [], 'every run completes');
    const summaries = results.map((r) => (r as PromiseFulfilledResult<RunSummary>).value);
    assert.deepEqual(
      summaries.map((s) => s.status),
      summaries.map(() => 'completed'),
    );
    const versions = summaries.map((s) => s.artifact?.version);
    assert.equal(new Set(versions).size, RUNS, `distinct versions: ${versions.join(', ')}`);
    assert.ok(versions.every((v) => v && /^v\d+$/.test(v)));
    process.stdout.write(`# ${RUNS} concurrent runs finished in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  });
});
