/** The failure vocabulary: permanent failures carry their type, message and details. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { Failure, allFailures, fail, isFailure } from '../../../schemas/failures';

test('fail() builds a non-retryable ApplicationFailure of the given type', () => {
  const err = fail(Failure.Diverged, 'loss=NaN at epoch 2 batch 17', { epoch: 2, batch: 17 });
  assert.ok(err instanceof ApplicationFailure);
  assert.equal(err.type, 'Diverged');
  assert.equal(err.nonRetryable, true);
  assert.equal(err.message, 'loss=NaN at epoch 2 batch 17');
  assert.deepEqual(err.details, [{ epoch: 2, batch: 17 }]);
  assert.deepEqual(fail(Failure.NotFound, 'x').details, []);
});

test('the vocabulary: types equal their names, isFailure knows them', () => {
  for (const [name, type] of Object.entries(Failure)) assert.equal(name, type);
  for (const t of ['InvalidSpec', 'ChecksumMismatch', 'CorruptDataset', 'InvalidModel', 'Diverged', 'DatasetTooLarge'])
    assert.ok(isFailure(t) && allFailures.includes(t as Failure), t);
  assert.equal(isFailure('Error'), false);
  assert.equal(isFailure(undefined), false);
});
