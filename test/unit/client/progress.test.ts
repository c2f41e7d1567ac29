import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { estimateEvaluation } from '../../../client/progress';
import type { ShardProgress } from '../../../schemas/payloads';

const shard = (fraction: number, attack = 'apgd-ce', images = 100): ShardProgress => ({ images, attack, fraction });

describe('live evaluation progress', () => {
  test('finished shards plus each running shard’s share of its images; attacks named once', () => {
    const done = { role: 'baseline' as const, images: 400, shards: 4, shardsDone: 1, imagesDone: 100 };
    const p = estimateEvaluation(done, [shard(0.5), shard(0.25, 'apgd-t'), shard(0.1, 'apgd-ce', 50)], 30);
    assert.equal(p.imagesEstimate, 100 + 50 + 25 + 5);
    assert.deepEqual(p.attacks, ['apgd-ce', 'apgd-t']);
    assert.equal(p.elapsed, 30);
    assert.equal(p.shardsDone, 1);
  });

  test('capped at the total; a shard between phases names no attack', () => {
    const done = { role: 'hardened' as const, images: 400, shards: 4, shardsDone: 3, imagesDone: 390 };
    const p = estimateEvaluation(done, [shard(1, '')], 1);
    assert.equal(p.imagesEstimate, 400);
    assert.deepEqual(p.attacks, []);
  });
});
