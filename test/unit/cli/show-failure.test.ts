// `tempered show` on a run failed by an activity: the line names the failure's type and message, not
// "Activity task failed".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { failureLine } from '../../../cli/follow';

describe('the failure line of a failed run', () => {
  it("lifts the activity failure's type and message", () => {
    const app = ApplicationFailure.create({ type: 'NotFound', message: 'dataset.source s3://nope/x/: no such bucket' });
    const act = new ActivityFailure(
      'Activity task failed',
      'fetchDataset',
      '1',
      RetryState.NON_RETRYABLE_FAILURE,
      'w',
      app,
    );
    const err = new WorkflowFailedError('Workflow execution failed', act, RetryState.NON_RETRYABLE_FAILURE);
    assert.equal(failureLine(err), 'run failed (NotFound): fetchDataset: dataset.source s3://nope/x/: no such bucket');
  });

  it("keeps the workflow's own typed failure", () => {
    const app = ApplicationFailure.create({ type: 'InvalidSpec', message: 'invalid spec: training.epochs' });
    const err = new WorkflowFailedError('Workflow execution failed', app, RetryState.NON_RETRYABLE_FAILURE);
    assert.equal(failureLine(err), 'run failed (InvalidSpec): invalid spec: training.epochs');
  });
});
