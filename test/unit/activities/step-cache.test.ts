// Step caching (activities/step-cache.ts) on an in-memory store: a second evaluation with the same inputs is a
// hit; a change to the weights, the evaluation config or the package version is a miss; compute.cache false
// neither reads nor writes; a cached model preparation whose model is gone is recomputed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DatasetRef, EvaluateInput, PreparedModel, PrepareModelInput } from '../../../schemas/payloads';
import { parseSpec } from '../../../schemas/spec';
import type { SpecInput } from '../../../schemas/spec';
import { cachedEvaluation, cachedPreparation } from '../../../activities/step-cache';
import type { ActivityDeps } from '../../../activities/deps';
import { metrics } from '../workflows/fixtures';
import { memoryStore } from './helpers';

const dataset: DatasetRef = {
  key: 'datasets/abc',
  source: 'builtin:fashion-mnist',
  format: 'idx',
  sha256s: { 'train-images-idx3-ubyte.gz': 'aa'.repeat(32) },
  counts: { train: 600, test: 100, classes: 10 },
  imageShape: [28, 28, 1],
};

function setup(packageVersion = '1.0.0') {
  const store = memoryStore();
  const deps: ActivityDeps = { store, cacheDir: '/nonexistent', packageVersion };
  const writeModel = async (prefix: string, weights: number[]) => {
    // The smallest model.json the store's model reader accepts: a topology and a manifest naming the weights.
    await store.putJson('tempered', `${prefix}model.json`, {
      modelTopology: { class_name: 'Sequential', config: { layers: [] } },
      weightsManifest: [{ paths: ['w.bin'], weights: [] }],
    });
    await store.putBytes('tempered', `${prefix}w.bin`, new Uint8Array(weights));
  };
  return { store, deps, writeModel };
}

const spec = (over: Partial<SpecInput> = {}) => parseSpec({ version: 1, ...over });
const evalInput = (s = spec(), uri = 's3://tempered/models/m/v1/'): EvaluateInput => ({
  workflowId: 'wf',
  spec: s,
  dataset,
  model: { uri },
  role: 'baseline',
});

describe('step cache', () => {
  test('an evaluation with the same inputs is a hit; other weights, config or package version are misses', async () => {
    const { deps, writeModel, store } = setup();
    await writeModel('models/m/v1/', [1, 2, 3]);
    let runs = 0;
    const run = async () => ({ ...metrics(0.9, 0.1 + ++runs / 100) });
    const first = await cachedEvaluation(deps, evalInput(), run);
    assert.equal(first.cached, undefined);
    const second = await cachedEvaluation(deps, evalInput(), run);
    assert.equal(runs, 1, 'the second evaluation did not run');
    assert.equal(second.cached, true);
    assert.deepEqual({ ...second, cached: undefined }, { ...first, cached: undefined });
    assert.ok([...store.objects.keys()].some((k) => k.startsWith('tempered/cache/steps/baseline-eval/')));

    // Same weights under another uri (production moved to an identical copy): still a hit.
    await writeModel('models/m/v2/', [1, 2, 3]);
    assert.equal((await cachedEvaluation(deps, evalInput(spec(), 's3://tempered/models/m/v2/'), run)).cached, true);
    // Other weights, another evaluation config, another package version: each a miss.
    await writeModel('models/m/v3/', [1, 2, 4]);
    await cachedEvaluation(deps, evalInput(spec(), 's3://tempered/models/m/v3/'), run);
    assert.equal(runs, 2);
    await cachedEvaluation(deps, evalInput(spec({ evaluation: { testImages: 50 } })), run);
    assert.equal(runs, 3);
    await cachedEvaluation({ ...deps, packageVersion: '1.0.1' }, evalInput(), run);
    assert.equal(runs, 4);
  });

  test('compute.cache false neither reads nor writes entries', async () => {
    const { deps, writeModel, store } = setup();
    await writeModel('models/m/v1/', [1, 2, 3]);
    let runs = 0;
    const run = async () => metrics(0.9, 0.2 + ++runs / 100);
    await cachedEvaluation(deps, evalInput(), run);
    const entries = () => [...store.objects.keys()].filter((k) => k.includes('/cache/steps/')).length;
    assert.equal(entries(), 1);
    const off = spec({ compute: { cache: false } });
    const r = await cachedEvaluation(deps, evalInput(off), run);
    assert.equal(r.cached, undefined);
    assert.equal(runs, 2);
    await cachedEvaluation(deps, evalInput(off), run);
    assert.equal(runs, 3);
    assert.equal(entries(), 1, 'nothing written with the cache off');
  });

  test('a trained baseline is reused while its model exists, and trained again once it is gone', async () => {
    const { deps, writeModel, store } = setup();
    const s = spec({ model: { source: { kind: 'train-baseline', epochs: 1 } } });
    const input: PrepareModelInput = { workflowId: 'wf', spec: s, dataset };
    let trained = 0;
    const run = async (): Promise<PreparedModel> => {
      trained++;
      await writeModel(`runs/wf/r${trained}/baseline/`, [trained]);
      return {
        model: { uri: `s3://tempered/runs/wf/r${trained}/baseline/` },
        origin: 'trained-baseline',
        fellBack: false,
        seconds: 3,
      };
    };
    await cachedPreparation(deps, input, run);
    const hit = await cachedPreparation(deps, input, run);
    assert.equal(trained, 1);
    assert.equal(hit.cached, true);
    assert.equal(hit.model.uri, 's3://tempered/runs/wf/r1/baseline/');
    store.objects.delete('tempered/runs/wf/r1/baseline/model.json');
    const again = await cachedPreparation(deps, input, run);
    assert.equal(trained, 2);
    assert.equal(again.cached, undefined);
    // Another baseline budget is another key.
    const other = spec({ model: { source: { kind: 'train-baseline', epochs: 2 } } });
    await cachedPreparation(deps, { ...input, spec: other }, run);
    assert.equal(trained, 3);
  });

  test('an artifact model is resolved every time (production may have moved)', async () => {
    const { deps } = setup();
    const s = spec({ model: { source: { kind: 'artifact' } } });
    let runs = 0;
    const run = async (): Promise<PreparedModel> => (
      runs++,
      { model: { uri: 's3://tempered/models/m/v1/' }, origin: 'artifact', fellBack: false, seconds: 0 }
    );
    await cachedPreparation(deps, { workflowId: 'wf', spec: s, dataset }, run);
    await cachedPreparation(deps, { workflowId: 'wf', spec: s, dataset }, run);
    assert.equal(runs, 2);
  });
});
