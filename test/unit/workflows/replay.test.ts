// Replays histories recorded from real runs (test/integration/pipeline.test.ts writes them) against the current
// workflow code: a change that makes `hardeningRun` non-deterministic for runs already in flight fails here.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { REPO_ROOT } from '../../../infra/config';

const DIR = join(REPO_ROOT, 'test', 'fixtures', 'histories');

test('recorded histories of real runs replay against the current workflow', async () => {
  const names = (await readdir(DIR)).filter((f) => f.endsWith('.pb')).sort();
  assert.ok(names.length >= 3, `expected recorded histories in ${DIR}, found ${names.length}`);
  const histories = await Promise.all(
    names.map(async (name) => ({
      workflowId: name.replace(/\.pb$/, ''),
      history: proto.temporal.api.history.v1.History.decode(await readFile(join(DIR, name))),
    })),
  );
  for (const { history } of histories) {
    assert.ok((history.events?.length ?? 0) > 10, 'a history of a real run has its events');
  }
  const results = Worker.runReplayHistories({ workflowsPath: join(REPO_ROOT, 'workflows', 'index.ts') }, histories);
  let replayed = 0;
  for await (const r of results) {
    assert.equal(r.error, undefined, `${r.workflowId}: ${String(r.error)}`);
    replayed++;
  }
  assert.equal(replayed, names.length);
});
