// The cursor a killed shard's heartbeat gives the progress-aware retry: it must grow whenever the shard moved on,
// or a shard killed more often than the budget would fail although each attempt progressed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shardCursor } from '../../../workflows/evaluation';

test('a shard cursor grows with the batch, the attack and the phase, and is absent without a heartbeat', () => {
  const at = (phase: number, attack?: number, batch?: number) =>
    shardCursor({ phase, done: [], ...(attack === undefined ? {} : { state: { attack, batch, brokenBy: [] } }) });
  const order = [at(0), at(0, 0, 1), at(0, 0, 7), at(0, 1, 0), at(0, 3, 2), at(1), at(1, 0, 1), at(2)];
  for (let i = 1; i < order.length; i++)
    assert.ok((order[i] as number) > (order[i - 1] as number), `step ${i}: ${order[i - 1]} → ${order[i]}`);
  assert.equal(shardCursor(undefined), undefined);
  assert.equal(shardCursor({ done: [] }), undefined);
});
