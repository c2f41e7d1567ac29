// The client SDK's pure parts: ids, links, edge validation (no server: a client that must never be called).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { SpecError, defaultWorkflowId, startHardeningRun, temporalUiUrl, workflowUiLink } from '../../../client/index';
import { checkCron, createSchedule, defaultScheduleId, scheduleWarnings } from '../../../client/schedules';
import { parseSpec } from '../../../schemas/spec';

/** A client whose every use fails the test: proves validation happens before any call. */
const untouchable = new Proxy({} as Client, {
  get(_target, prop) {
    throw new Error(`the client was used (${String(prop)}) before the input was validated`);
  },
});

describe('client', () => {
  test('default workflow id: harden-<model>-<YYYYMMDD-HHmmss> in UTC', () => {
    assert.equal(defaultWorkflowId('fmnist', new Date('2025-03-04T05:06:07.890Z')), 'harden-fmnist-20250304-050607');
  });

  test('UI link: TEMPORAL_UI_URL wins, else the dev-server convention (gRPC port + 1000)', () => {
    const noStack = { TEMPERED_HOME: '/nonexistent-tempered-home' };
    assert.equal(
      temporalUiUrl('127.0.0.1:7233', { ...noStack, TEMPORAL_UI_URL: 'https://ui.example/' }),
      'https://ui.example',
    );
    assert.equal(temporalUiUrl('temporal.internal:7233', noStack), 'http://temporal.internal:8233');
    assert.equal(
      workflowUiLink('http://127.0.0.1:18233', 'default', 'harden-a-20250101-000000'),
      'http://127.0.0.1:18233/namespaces/default/workflows/harden-a-20250101-000000',
    );
  });

  test('an invalid spec is a SpecError listing every problem, before Temporal is touched', async () => {
    const err = await startHardeningRun(untouchable, { version: 1, training: { epochs: 0, batchSize: -1 } }).then(
      () => assert.fail('expected a SpecError'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SpecError, String(err));
    assert.equal(err.lines.length, 2);
    assert.match(err.lines.join('\n'), /training\.epochs: got 0/);
    assert.match(err.lines.join('\n'), /training\.batchSize: got -1/);
  });

  test('a workflow id with spaces is refused before Temporal is touched', async () => {
    await assert.rejects(startHardeningRun(untouchable, { version: 1 }, { workflowId: 'a b' }), /workflowId: expected/);
  });
});

describe('schedules', () => {
  test('cron shape: 5 fields or a macro; anything else is a one-line error', () => {
    assert.equal(checkCron(' 0  2 * * * '), '0 2 * * *');
    assert.equal(checkCron('@daily'), '@daily');
    for (const bad of ['', 'every night', '0 2 * *', '0 2 * * * * * *']) {
      assert.throws(() => checkCron(bad), /^Error: cron: expected 5 fields like "0 2 \* \* \*"/);
    }
  });

  test('warns when the spec does not start from the production artifact', () => {
    assert.match(scheduleWarnings(parseSpec({ version: 1 }))[0], /model\.source is train-baseline, not an artifact/);
    assert.match(
      scheduleWarnings(parseSpec({ version: 1, model: { source: { kind: 'artifact', ref: 'v3' } } }))[0],
      /fixed version/,
    );
    assert.deepEqual(scheduleWarnings(parseSpec({ version: 1, model: { source: { kind: 'artifact' } } })), []);
    assert.equal(defaultScheduleId(parseSpec({ version: 1, artifacts: { modelName: 'fm' } })), 'harden-fm-nightly');
  });

  test('bad input is refused before Temporal is touched', async () => {
    await assert.rejects(createSchedule(untouchable, { version: 1 }, { cron: 'nightly' }), /cron: expected 5 fields/);
    await assert.rejects(createSchedule(untouchable, { version: 2 }, { cron: '0 2 * * *' }), SpecError);
    await assert.rejects(
      createSchedule(untouchable, { version: 1 }, { cron: '0 2 * * *', scheduleId: 'a/b' }),
      /scheduleId: expected letters/,
    );
  });
});
