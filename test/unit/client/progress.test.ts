import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { estimateEvaluation, shardFraction } from '../../../client/progress';
import type { ShardProgress } from '../../../schemas/payloads';

const shard = (o: Partial<ShardProgress> = {}): ShardProgress => ({
  images: 100,
  phase: 0,
  phases: 1,
  attack: 'apgd-ce',
  attackIndex: 0,
  attacks: 4,
  imagesDone: 0,
  imagesTotal: 80,
  ...o,
});

describe('live evaluation progress', () => {
  test('a shard counts its phases, the attacks of a phase and the images of the attack in progress', () => {
    assert.equal(shardFraction(shard()), 0);
    // Attack 2 of 4, half of its 80 robust images done: (1 + 0.5) / 4.
    assert.equal(shardFraction(shard({ attackIndex: 1, imagesDone: 40 })), 0.375);
    // Phase 2 of 2 (a listed attack after the suite), its only attack half done: (1 + 0.5) / 2.
    assert.equal(shardFraction(shard({ phase: 1, phases: 2, attacks: 1, imagesDone: 5, imagesTotal: 10 })), 0.75);
    // The clean pass reports an attack with nothing started; an attack on no robust image adds nothing.
    assert.equal(shardFraction(shard({ attackIndex: 3, imagesDone: 0, imagesTotal: 0 })), 0.75);
    assert.equal(shardFraction(shard({ attackIndex: 3, imagesDone: 99, imagesTotal: 10 })), 1);
  });

  test('finished shards plus the running ones’ share, capped at the total; attacks named once', () => {
    const done = { role: 'baseline' as const, images: 400, shards: 4, shardsDone: 1, imagesDone: 100 };
    const p = estimateEvaluation(
      done,
      [shard({ attackIndex: 2 }), shard({ attackIndex: 1, attack: 'apgd-t', imagesDone: 80 })],
      30,
    );
    assert.equal(p.imagesEstimate, 100 + 50 + 50);
    assert.deepEqual(p.attacks, ['apgd-ce', 'apgd-t']);
    assert.equal(p.elapsed, 30);
    assert.equal(p.shardsDone, 1);
    const over = estimateEvaluation({ ...done, imagesDone: 390 }, [shard({ attackIndex: 3, imagesDone: 80 })], 1);
    assert.equal(over.imagesEstimate, 400);
  });
});
