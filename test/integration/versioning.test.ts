// Pinned worker builds on the dev server: a worker that declares a deployment and build ID (Worker Versioning,
// PINNED) makes itself current on a deployment without one, runs start on it and are pinned to its build; a second
// build started with TEMPERED_PROMOTE_BUILD=never does not take new runs until an operator makes it current.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { HARDENING_RUN } from '../../workflows/messages';
import { stackFromEnv, uniqueName } from '../support/stack';
import { spawnWorker } from '../support/workers';
import type { WorkerProcess } from '../support/workers';

const queues = { io: uniqueName('ver-io'), heavy: uniqueName('ver-heavy') };
const deployment = uniqueName('ver');
let client: Client;
let connection: Connection;
const workers: WorkerProcess[] = [];
const PINNED = proto.temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_PINNED;

const io = (buildId: string, promote: string) =>
  spawnWorker({
    queues,
    only: 'io',
    env: { TEMPERED_DEPLOYMENT: deployment, TEMPERED_BUILD_ID: buildId, TEMPERED_PROMOTE_BUILD: promote },
  }).then((w) => (workers.push(w), w));

/** Starts a run whose spec is invalid: it ends in its first workflow task, on whichever build took it. */
async function quickRun(): Promise<WorkflowHandle> {
  const handle = await client.workflow.start(HARDENING_RUN, {
    workflowId: uniqueName('ver-run'),
    taskQueue: queues.io,
    args: [{ version: 1, training: { epochs: -1 } }],
  });
  await assert.rejects(handle.result(), WorkflowFailedError);
  return handle;
}

async function versioning(handle: WorkflowHandle) {
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  return { behavior: info?.behavior, buildId: info?.deploymentVersion?.buildId };
}

before(async () => {
  const conn = stackFromEnv();
  connection = await Connection.connect({ address: conn.temporal.address });
  client = new Client({ connection, namespace: conn.temporal.namespace });
});

after(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await connection?.close();
});

describe('pinned worker builds', () => {
  test('runs are pinned to the current build; a new build takes new runs only once it is made current', async () => {
    const first = await io('build-1', 'if-none');
    assert.match(first.output(), new RegExp(`build build-1 is now current in deployment ${deployment}`));
    assert.deepEqual(await versioning(await quickRun()), { behavior: PINNED, buildId: 'build-1' });

    const second = await io('build-2', 'never');
    assert.match(second.output(), /build build-2 not promoted/);
    assert.deepEqual(await versioning(await quickRun()), { behavior: PINNED, buildId: 'build-1' });

    await client.workflowService.setWorkerDeploymentCurrentVersion({
      namespace: client.options.namespace,
      deploymentName: deployment,
      buildId: 'build-2',
    });
    assert.deepEqual(await versioning(await quickRun()), { behavior: PINNED, buildId: 'build-2' });
  });
});
