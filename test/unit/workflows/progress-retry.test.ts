// The bookkeeping of progress-aware retries (workflows/progress-retry.ts) on its own: progress is free and resets
// the backoff, failures in a row without progress spend the budget. The workflow loop around it is tested in
// hardening-run.test.ts (fake activities) and test/integration/durability.test.ts (a worker killed many times).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure, ActivityFailure } from '@temporalio/common';
import { isUnavailable, ProgressBudget } from '../../../workflows/progress-retry';

const policy = {
  maxAttemptsWithoutProgress: 3,
  initialIntervalMs: 1000,
  backoffCoefficient: 2,
  maximumIntervalMs: 3000,
  maxUnavailableMs: 10_000,
};

describe('ProgressBudget', () => {
  test('any number of failures is retried while each one advanced the cursor, always after the first interval', () => {
    const b = new ProgressBudget(policy);
    for (let cursor = 0; cursor < 50; cursor += 4) {
      assert.deepEqual(b.afterFailure(cursor), { retry: true, progressed: true, delayMs: 1000, stalled: 0 });
    }
    assert.equal(b.failures, 13);
    assert.equal(b.cursor, 48);
  });

  test('failures in a row without progress back off and spend the budget; progress starts it again', () => {
    const b = new ProgressBudget(policy);
    assert.deepEqual(b.afterFailure(undefined), { retry: true, progressed: false, delayMs: 1000, stalled: 1 });
    assert.deepEqual(b.afterFailure(undefined), { retry: true, progressed: false, delayMs: 2000, stalled: 2 });
    assert.deepEqual(b.afterFailure(8), { retry: true, progressed: true, delayMs: 1000, stalled: 0 });
    assert.deepEqual(b.afterFailure(8), { retry: true, progressed: false, delayMs: 1000, stalled: 1 });
    assert.deepEqual(b.afterFailure(4), { retry: true, progressed: false, delayMs: 2000, stalled: 2 });
    assert.deepEqual(b.afterFailure(8), { retry: false, progressed: false, stalled: 3 });
    assert.equal(b.cursor, 8, 'a lower or equal cursor is not progress');
  });

  test('the backoff is capped at maximumInterval', () => {
    const b = new ProgressBudget({ ...policy, maxAttemptsWithoutProgress: 10 });
    const delays = Array.from({ length: 5 }, () => {
      const d = b.afterFailure(undefined);
      return d.retry ? d.delayMs : -1;
    });
    assert.deepEqual(delays, [1000, 2000, 3000, 3000, 3000]);
  });

  test('a start cursor (a resumed run) must be beaten to count as progress', () => {
    const b = new ProgressBudget({ ...policy, maxAttemptsWithoutProgress: 1 }, 12);
    assert.equal(b.afterFailure(12).retry, false);
    assert.throws(() => new ProgressBudget({ ...policy, maxAttemptsWithoutProgress: 0 }), /maxAttemptsWithoutProgress/);
  });

  test('a store that does not answer waits and retries without spending the budget, up to maxUnavailable', () => {
    const b = new ProgressBudget(policy);
    assert.deepEqual(b.afterFailure(undefined), { retry: true, progressed: false, delayMs: 1000, stalled: 1 });
    // Outage: 1 + 2 + 3 + 3 s waited, and the no-progress count stays where it was.
    for (const delayMs of [1000, 2000, 3000, 3000])
      assert.deepEqual(b.afterFailure(undefined, true), { retry: true, progressed: false, delayMs, stalled: 1 });
    assert.equal(b.unavailableMs, 9000);
    // The next wait would pass 10 s in all: give up.
    assert.deepEqual(b.afterFailure(undefined, true), { retry: false, progressed: false, stalled: 1 });
    // Progress after an outage resets its backoff (not its total).
    const c = new ProgressBudget(policy);
    c.afterFailure(undefined, true);
    c.afterFailure(undefined, true);
    assert.equal(c.afterFailure(3).progressed, true);
    assert.deepEqual(c.afterFailure(undefined, true), { retry: true, progressed: false, delayMs: 1000, stalled: 0 });
  });

  test('isUnavailable finds the store type anywhere in the cause chain, and nothing else', () => {
    const store = ApplicationFailure.create({ type: 'ObjectStoreUnavailable', message: 'write EPIPE' });
    const wrapped = new ActivityFailure(
      'activity failed',
      'evaluateShard',
      '7',
      'RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED' as never,
      'w',
      store,
    );
    assert.equal(isUnavailable(wrapped), true);
    assert.equal(isUnavailable(ApplicationFailure.create({ type: 'ObjectNotFound', message: 'x' })), false);
    assert.equal(isUnavailable(new Error('ObjectStoreUnavailable')), false);
  });
});
