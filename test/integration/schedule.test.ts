// Nightly re-hardening on the real server: a schedule created and triggered starts a hardeningRun named after
// it; a second trigger while that run is still running is skipped (overlap SKIP); list and delete.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { ScheduleAlreadyRunning } from '@temporalio/client';
import { connectClient } from '../../client/index';
import {
  createSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  triggerSchedule,
} from '../../client/schedules';
import { HARDENING_RUN } from '../../workflows/messages';
import { stackFromEnv, uniqueName } from '../support/stack';

async function until<T>(get: () => Promise<T | undefined>, what: string, ms = 20000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('schedules on the real server', () => {
  stackFromEnv();
  let client: Client;
  const scheduleId = uniqueName('harden-nightly');
  // No worker polls this queue: a started run stays RUNNING, which is what the SKIP check needs.
  const taskQueue = uniqueName('schedule-io');
  const spec = {
    version: 1,
    artifacts: { modelName: 'fmnist' },
    model: { source: { kind: 'artifact', ref: 'production', fallback: 'train-baseline' } },
    compute: { ioQueue: taskQueue },
  };
  const started: string[] = [];

  before(async () => {
    client = await connectClient();
  });
  after(async () => {
    for (const id of started)
      await client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    await deleteSchedule(client, scheduleId).catch(() => undefined);
    await client?.connection.close();
  });

  test('create → trigger starts a run named after the schedule; a second trigger is skipped; delete', async () => {
    const created = await createSchedule(client, spec, { cron: '0 2 * * *', scheduleId });
    assert.deepEqual(created.warnings, [], 'an artifact/production spec needs no warning');
    assert.equal(created.workflowIdPrefix, scheduleId);
    await assert.rejects(createSchedule(client, spec, { cron: '0 2 * * *', scheduleId }), ScheduleAlreadyRunning);

    const description = await describeSchedule(client, scheduleId);
    assert.equal(description.policies.overlap, 'SKIP');
    assert.equal(description.policies.catchupWindow, 3_600_000);
    assert.equal(description.action.workflowType, HARDENING_RUN);
    assert.equal(description.action.taskQueue, taskQueue);
    assert.ok(description.info.nextActionTimes[0].getUTCHours() === 2, 'next run at 02:00 UTC');

    await triggerSchedule(client, scheduleId);
    const first = await until(async () => {
      const { info } = await describeSchedule(client, scheduleId);
      return info.recentActions[0]?.action.workflow.workflowId;
    }, 'the triggered run');
    started.push(first);
    assert.ok(first.startsWith(`${scheduleId}-`), first);
    const run = await client.workflow.getHandle(first).describe();
    assert.equal(run.type, HARDENING_RUN);
    assert.equal(run.status.name, 'RUNNING');
    assert.equal(run.taskQueue, taskQueue);
    const [input] =
      (await client.workflow.getHandle(first).fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes
        ?.input?.payloads ?? [];
    assert.ok(input, 'the run got the spec as its argument');
    assert.match(Buffer.from(input.data ?? []).toString(), /"modelName":"fmnist"/);

    // The first run is still running (no worker): SKIP means the second trigger starts nothing.
    await triggerSchedule(client, scheduleId);
    await new Promise((r) => setTimeout(r, 2000));
    const { info } = await describeSchedule(client, scheduleId);
    assert.equal(info.recentActions.length, 1, 'the overlapping trigger was skipped');
    assert.equal(info.runningActions.length, 1);

    const listed = (await listSchedules(client)).find((s) => s.scheduleId === scheduleId);
    assert.ok(listed, 'schedule list shows it');
    assert.deepEqual(listed.cron, ['0 2 * * *']);
    assert.equal(listed.workflowType, HARDENING_RUN);

    await deleteSchedule(client, scheduleId);
    await until(
      async () => ((await listSchedules(client)).some((s) => s.scheduleId === scheduleId) ? undefined : true),
      'the deleted schedule gone from the list',
    );
    await assert.rejects(triggerSchedule(client, scheduleId), new RegExp(`no schedule with id ${scheduleId}`));
  });

  test('a spec that does not start from production is accepted with a warning', async () => {
    const id = uniqueName('harden-warn');
    const created = await createSchedule(
      client,
      { version: 1, compute: { ioQueue: taskQueue } },
      { cron: '@daily', scheduleId: id, paused: true },
    );
    try {
      assert.equal(created.warnings.length, 1);
      assert.match(created.warnings[0], /model\.source is train-baseline, not an artifact/);
      assert.equal((await describeSchedule(client, id)).state.paused, true);
    } finally {
      await deleteSchedule(client, id);
    }
  });
});
