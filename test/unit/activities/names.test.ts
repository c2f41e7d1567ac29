import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnsafeNameError, runPrefix, safeRelativeName } from '../../../activities/names';

describe('safeRelativeName', () => {
  for (const ok of ['train-images-idx3-ubyte.gz', 'cifar/data_batch_1.bin', 'a/b/c', '..x', 'x..']) {
    it(`accepts ${JSON.stringify(ok)}`, () => assert.equal(safeRelativeName(ok, 'here'), ok));
  }
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['x'.repeat(1025), /overlong/],
    ['../x', /traversal/],
    ['a/../../x', /traversal/],
    ['a/..', /traversal/],
    ['./a', /traversal/],
    ['a//b', /traversal/],
    ['a/', /traversal/],
    ['/etc/passwd', /absolute/],
    ['a\\..\\x', /backslash/],
    ['a\0b', /NUL/],
  ];
  for (const [name, why] of bad) {
    it(`refuses ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…` : name)}, naming where it came from`, () => {
      assert.throws(
        () => safeRelativeName(name, 'dataset.sha256'),
        (err: unknown) =>
          err instanceof UnsafeNameError && why.test(err.message) && err.message.startsWith('dataset.sha256:'),
      );
    });
  }
});

describe('runPrefix', () => {
  it('names the workflow and the Temporal run', () => assert.equal(runPrefix('harden-x', 'r1'), 'runs/harden-x/r1'));
});
