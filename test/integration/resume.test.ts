// Resuming a run and step caching on the real stack: a run terminated mid-training is resumed without its
// baseline work and continues its checkpoint; a completed run is refused; a repeated run hits the step cache.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NotResumableError, resumeHardeningRun } from '../../client/resume';
import type { RunSummary } from '../../schemas/payloads';
import { tempered, useRig, waitFor } from '../support/rig';

const rig = useRig('res');

describe('resume and step caching on the real stack', () => {
  test('a run terminated mid-training is resumed: no baseline work again, training continues its checkpoint', async () => {
    const handle = await rig.start(rig.tinySpec());
    const oldRunId = (await handle.describe()).runId;
    await waitFor(handle, (p) => (p.training?.checkpointCursor ?? -1) >= 6, 'a few training checkpoints');
    await handle.terminate('failed on purpose by the test');
    await rig.heavy.kill('SIGKILL');
    await rig.respawnHeavy();

    const cli = await tempered('resume', handle.workflowId, '--json');
    assert.equal(cli.code, 0, cli.err);
    const started = JSON.parse(cli.out) as { reused: string[]; resumedFrom: { temporalRunId: string } };
    assert.deepEqual(started.reused, ['fetching-dataset', 'preparing-model', 'baseline-eval']);
    assert.equal(started.resumedFrom.temporalRunId, oldRunId);

    const latest = rig.client.workflow.getHandle(handle.workflowId);
    const summary = (await latest.result()) as RunSummary;
    assert.equal(summary.status, 'completed', JSON.stringify(summary));
    assert.deepEqual(summary.resumedFrom, { workflowId: handle.workflowId, temporalRunId: oldRunId });
    assert.deepEqual(summary.reused, ['fetching-dataset', 'preparing-model', 'baseline-eval']);
    assert.equal(summary.training?.batches, 48);
    // Training continued the terminated execution's newest checkpoint instead of starting over: the new
    // execution's first checkpoint lies past it (a fresh start writes batch 0 first).
    const newRunId = (await latest.describe()).runId;
    const cursors = async (runId: string) =>
      (await rig.store.list(rig.bucket, `runs/${handle.workflowId}/${runId}/hardened/checkpoints/`))
        .map((e) => Number(/ckpt-(\d+)\.bin$/.exec(e.key)?.[1]))
        .filter((n) => Number.isFinite(n));
    const oldNewest = Math.max(...(await cursors(oldRunId)));
    const newFirst = Math.min(...(await cursors(newRunId)));
    const oldKeys = (await rig.store.list(rig.bucket, `runs/${handle.workflowId}/`)).map((e) => e.key);
    assert.ok(oldNewest >= 6, `the terminated run had checkpoints up to ${oldNewest}: ${oldKeys.join(', ')}`);
    assert.ok(newFirst > oldNewest, `the resumed run's first checkpoint ${newFirst} lies past ${oldNewest}`);
    assert.ok(summary.training?.resumedFrom, 'training resumed from a checkpoint');
    // The new execution ran no baseline work; its memo links to the old one.
    const description = await latest.describe();
    assert.notEqual(description.runId, oldRunId);
    assert.deepEqual((description.memo as { resumedFrom?: unknown }).resumedFrom, summary.resumedFrom);
    const types = ((await latest.fetchHistory()).events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter((t): t is string => t !== undefined);
    for (const done of ['fetchDataset', 'prepareModel', 'baselineEval']) assert.ok(!types.includes(done), types.join());
    // Training ran again; the hardened model's evaluation is a child workflow (or its cache hit) since the fan-out.
    assert.ok(types.includes('adversarialTrain'), types.join());

    // A completed run is refused, by the SDK and by the CLI.
    await assert.rejects(resumeHardeningRun(rig.client, handle.workflowId), (err: unknown) => {
      assert.ok(err instanceof NotResumableError);
      assert.match(err.message, /completed \(completed\); only a failed, cancelled or timed-out run can be resumed/);
      return true;
    });
    const refused = await tempered('resume', handle.workflowId);
    assert.notEqual(refused.code, 0);
    assert.match(refused.err, /completed \(completed\)/);
  });

  test('a repeated run hits the step cache: the same baseline is neither trained nor evaluated again', async () => {
    // The runs above trained and evaluated this baseline (same dataset, model spec, evaluation and seed).
    const spec = rig.tinySpec({
      training: { epochs: 1, batchSize: 50, checkpointEveryBatches: 4, learningRate: 0.002 },
    });
    const summary = (await (await rig.start(spec)).result()) as RunSummary;
    assert.equal(summary.status, 'completed', JSON.stringify(summary));
    assert.deepEqual(summary.cached, ['preparing-model', 'baseline-eval']);
    const entries = await rig.store.list(rig.bucket, 'cache/steps/');
    assert.ok(
      entries.some((e) => e.key.startsWith('cache/steps/baseline-eval/')),
      'the baseline evaluation is cached',
    );

    // compute.cache false recomputes.
    const off = (await (
      await rig.start({ ...spec, compute: { ...spec.compute, cache: false } })
    ).result()) as RunSummary;
    assert.equal(off.cached, undefined);
  });
});
