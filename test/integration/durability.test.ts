// Durability on the real stack (issue: durable past any number of preemptions): the heavy worker SIGKILLed more
// times than any fixed attempt budget during training, and the run still completes with every batch trained.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunSummary } from '../../schemas/payloads';
import { attemptsOf, useRig, waitFor } from '../support/rig';

const rig = useRig('dur');

describe('durability on the real stack', () => {
  test('the heavy worker SIGKILLed 6 times during training: every attempt progressed, so the run completes', async () => {
    const handle = await rig.start(rig.tinySpec());
    const kills: number[] = [];
    let cursor = -1;
    for (let k = 0; k < 6; k++) {
      // Kill as soon as this attempt has written a checkpoint past the previous kill's.
      const p = await waitFor(
        handle,
        (q) => (q.training?.checkpointCursor ?? -1) > cursor,
        `a checkpoint past ${cursor} (kill ${k + 1})`,
      );
      cursor = p.training?.checkpointCursor ?? cursor;
      await rig.heavy.kill('SIGKILL');
      kills.push(cursor);
      assert.ok(cursor < 48, `training finished before kill ${k + 1}; kills so far at ${kills.join(', ')}`);
      await rig.respawnHeavy();
    }
    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.status, 'completed', JSON.stringify(summary));
    assert.equal(summary.training?.batches, 48, 'every batch trained');
    assert.ok(summary.training?.resumedFrom, 'the last attempt resumed from a checkpoint');
    // Each kill was an attempt of its own (the workflow re-scheduled it), and none spent a retry budget.
    const attempts = await attemptsOf(handle, 'adversarialTrain');
    assert.ok(
      attempts.length >= 7,
      `at least 7 training attempts, got ${attempts.length}: kills at ${kills.join(', ')}`,
    );
  });
});
