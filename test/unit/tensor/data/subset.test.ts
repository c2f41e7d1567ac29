import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DatasetRangeError,
  firstIndices,
  randomIndices,
  selectIndices,
  stratifiedIndices,
  subset,
} from '../../../../tensor/data';
import type { ImageDataset } from '../../../../tensor/data';

/** 50 images of 2×2×1 whose pixels all equal the index; skewed classes of 20, 15, 10 and 5 images. */
function toy(): ImageDataset {
  const labels = Int32Array.from({ length: 50 }, (_, i) => (i < 20 ? 0 : i < 35 ? 1 : i < 45 ? 2 : 3));
  const pixels = Uint8Array.from({ length: 200 }, (_, k) => Math.floor(k / 4));
  return {
    pixels,
    labels,
    count: 50,
    height: 2,
    width: 2,
    channels: 1,
    numClasses: 4,
    classNames: ['a', 'b', 'c', 'd'],
    source: 'toy',
  };
}

describe('subsets', () => {
  it('first-N is the first N', () => {
    assert.deepEqual([...firstIndices(50, 3)], [0, 1, 2]);
    assert.throws(() => firstIndices(50, 51), /asked for 51 images but only 50 exist/);
  });

  it('random-N is deterministic per seed, distinct, and differs across seeds', () => {
    const a = randomIndices(50, 20, 7);
    assert.deepEqual(a, randomIndices(50, 20, 7));
    assert.notDeepEqual(a, randomIndices(50, 20, 8));
    assert.equal(new Set(a).size, 20);
    assert.ok(a.every((i) => i >= 0 && i < 50));
    assert.throws(() => randomIndices(50, 60, 1), DatasetRangeError);
  });

  it('stratified-N balances classes, is deterministic per seed, and names a class that is short', () => {
    const d = toy();
    const idx = stratifiedIndices(d.labels, 4, 18, 3); // 5, 5, 4, 4
    assert.deepEqual(idx, stratifiedIndices(d.labels, 4, 18, 3));
    assert.notDeepEqual(idx, stratifiedIndices(d.labels, 4, 18, 4));
    const per = [0, 0, 0, 0];
    for (const i of idx) per[d.labels[i]]++;
    assert.deepEqual(per, [5, 5, 4, 4]);
    assert.equal(new Set(idx).size, 18);
    assert.deepEqual(
      [...idx],
      [...idx].sort((x, y) => x - y),
      'ascending source order',
    );
    assert.throws(() => stratifiedIndices(d.labels, 4, 24, 3), /needs 6 images of class 3 but only 5 exist/);
    assert.throws(() => stratifiedIndices(d.labels, 4, 51, 3), /asked for 51 images but only 50 exist/);
  });

  it('subset copies the chosen images and labels into a compact dataset', () => {
    const d = toy();
    const s = subset(d, { strategy: 'random', n: 5, seed: 11 });
    const idx = randomIndices(50, 5, 11);
    assert.equal(s.count, 5);
    assert.equal(s.pixels.length, 20);
    for (let i = 0; i < 5; i++) {
      assert.equal(s.labels[i], d.labels[idx[i]]);
      assert.deepEqual([...s.pixels.subarray(i * 4, i * 4 + 4)], [idx[i], idx[i], idx[i], idx[i]]);
    }
    assert.match(s.source, /toy \[random 5 seed 11\]/);
    assert.throws(() => selectIndices(d, [0, 50]), /index 50 at position 1 is outside 0\.\.49/);
  });
});
