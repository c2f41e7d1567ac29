/**
 * A run with the evaluation fan-out (child workflows) replays under another workflow id, as recorded histories
 * are replayed in tests: the children's ids must not derive from the parent's id.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { fakeActivities, runHardening, temporalBinary, workflowBundle } from './env';

let env: TestWorkflowEnvironment;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  [env] = await Promise.all([
    TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalBinary() }, ip: '127.0.0.1' },
    }),
    workflowBundle(),
  ]);
});

after(async () => {
  await env?.teardown();
});

test('a fanned-out run replays under another workflow id', async () => {
  const { activities } = fakeActivities();
  let history: temporal.api.history.v1.IHistory | undefined;
  const summary = await runHardening(env, { version: 1 }, activities, async (handle) => {
    await handle.result();
    history = await handle.fetchHistory();
  });
  assert.equal(summary.status, 'completed');
  const children = (history?.events ?? []).filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
  assert.equal(children.length, 2, 'two evaluations, each a child workflow');
  const workflowsPath = join(fileURLToPath(new URL('../../../', import.meta.url)), 'workflows', 'index.ts');
  await Worker.runReplayHistory({ workflowsPath }, history!, 'replayed-under-another-id');
});
