// A person starts a hardening run from the Temporal Web UI's Start Workflow form (docs/web-ui.md), in a real
// headless chromium: the form is filled the way a person would (workflow id, task queue, workflow type, the JSON
// of examples/minimal.json typed into the input editor), Start is clicked, and the run then completes on workers
// started here (the real workflow, fake activities from test/unit/workflows/env.ts). The Temporal client checks
// that the Web UI started it, with that input, and that it completed.
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { workflowUiLink } from '../../client/index';
import { REPO_ROOT } from '../../infra/config';
import { RunSummary } from '../../schemas/payloads';
import { Screenshots, browserUnavailable, launchBrowser, stackUiUrl } from '../support/browser';
import type { HeadlessBrowser } from '../support/browser';
import { stackFromEnv, uniqueName } from '../support/stack';
import { fakeActivities, workflowBundle } from '../unit/workflows/env';

Runtime.install({ logger: new DefaultLogger('WARN') });

/** TEMPERED_WEBUI_SCREENSHOTS keeps the pictures in that folder; otherwise a temp folder, removed after a pass. */
const keptShots = process.env.TEMPERED_WEBUI_SCREENSHOTS;

describe('Temporal Web UI: Start Workflow form', { skip: browserUnavailable() ?? false }, () => {
  const ioQueue = uniqueName('webui-io');
  const heavyQueue = uniqueName('webui-heavy');
  const fakes = fakeActivities();
  let conn: ReturnType<typeof stackFromEnv>;
  let client: Client;
  let native: NativeConnection;
  let workers: Worker[] = [];
  let running: Promise<unknown>[] = [];
  let browser: HeadlessBrowser | undefined;
  let shots: Screenshots;
  let passed = false;
  const started: string[] = [];

  before(async () => {
    conn = stackFromEnv();
    shots = new Screenshots(keptShots ?? (await mkdtemp(join(tmpdir(), 'tempered-webui-'))));
    native = await NativeConnection.connect({ address: conn.temporal.address });
    const common = { connection: native, namespace: conn.temporal.namespace, activities: fakes.activities } as const;
    workers = [
      await Worker.create({ ...common, taskQueue: ioQueue, workflowBundle: await workflowBundle() }),
      await Worker.create({ ...common, taskQueue: heavyQueue }),
    ];
    running = workers.map((w) => w.run());
    client = new Client({
      connection: await Connection.connect({ address: conn.temporal.address }),
      namespace: conn.temporal.namespace,
    });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const id of started) {
      await client?.workflow
        .getHandle(id)
        .terminate('web-ui test cleanup')
        .catch(() => {});
    }
    await browser?.close();
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
    await client?.connection.close();
    await native?.close();
    if (passed && !keptShots && shots) await rm(shots.dir, { recursive: true, force: true });
  });

  test('a run started from the form completes, with the spec typed into the input editor', async (t) => {
    assert.ok(browser, 'the browser did not start');
    const { page } = browser;
    const ui = stackUiUrl();
    const ns = conn.temporal.namespace;
    const workflowId = uniqueName('harden-webui');
    const example = JSON.parse(await readFile(join(REPO_ROOT, 'examples', 'minimal.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const spec = { ...example, compute: { ioQueue, heavyQueue } };
    const input = JSON.stringify(spec, null, 2);
    t.diagnostic(`screenshots: ${shots.dir}`);

    const startUrl = `${ui}/namespaces/${encodeURIComponent(ns)}/workflows/start-workflow`;
    await shots.step(page, 'open the Start Workflow page', async () => {
      // The query parameters prefill the form (docs/web-ui.md); the fields are typed over below regardless.
      const prefill = new URLSearchParams({ workflowType: 'hardeningRun', taskQueue: ioQueue });
      await page.goto(`${startUrl}?${prefill}`);
      await page.getByRole('heading', { name: 'Start Workflow' }).waitFor();
      // With `workflowType` in the URL the page copies the input of that type's latest run into the editor,
      // asynchronously: let that land before typing, or it could overwrite what is typed.
      await page.waitForLoadState('networkidle');
      assert.equal(await page.getByLabel('Workflow Type', { exact: true }).inputValue(), 'hardeningRun');
      assert.equal(await page.getByLabel('Task Queue', { exact: true }).inputValue(), ioQueue);
    });

    // The Data editor is CodeMirror 6: a contenteditable div with role textbox. Its <label>Data</label> points
    // at the editor's wrapper (so the textbox itself has no accessible name); More options holds more editors
    // (Summary, Details), so the label is what tells them apart. It may hold a previous run's input: select all
    // and delete first. insertText types the text as one input event, so the editor's bracket auto-closing and
    // indentation do not alter it.
    const dataLabel = page.locator('label').filter({ hasText: /^\s*Data\s*$/ });
    const editor = page.locator(`[id="${await dataLabel.getAttribute('for')}"]`).getByRole('textbox');
    await shots.step(page, 'fill the form', async () => {
      await page.getByLabel('Workflow ID', { exact: true }).fill(workflowId);
      await page.getByLabel('Task Queue', { exact: true }).fill(ioQueue);
      await page.getByLabel('Workflow Type', { exact: true }).fill('hardeningRun');
      await editor.click();
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText(input);
      await page.getByLabel('json/plain', { exact: true }).check();
      const typed = await editor.innerText();
      assert.deepEqual(JSON.parse(typed), spec, `the editor holds something else than the spec:\n${typed}`);
    });
    await shots.take(page, 'form-filled');

    await shots.step(page, 'click Start Workflow', async () => {
      const start = page.getByRole('button', { name: 'Start Workflow', exact: true });
      if (await start.isDisabled()) {
        // The form disables Start while a field is invalid and says why next to it ("Input must be valid JSON").
        const why = await page.locator('[role="alert"]').allInnerTexts();
        throw new Error(`the button is disabled; the form says: ${why.filter((w) => w.trim()).join(' | ') || '-'}`);
      }
      assert.deepEqual(JSON.parse(await editor.innerText()), spec, 'the editor changed after typing');
      await start.click();
      started.push(workflowId);
      await page.getByText('Workflow started successfully').waitFor();
    });
    await shots.take(page, 'started');
    // The toast links to the new run's page (`…/workflows/<id>/<runId>/timeline`).
    const href = await page.getByRole('link', { name: 'Workflow started successfully' }).getAttribute('href');
    assert.ok(href?.includes(`/workflows/${encodeURIComponent(workflowId)}/`), `the toast links to ${href}`);

    // The client's view: the Web UI started this workflow with the spec as its one argument.
    const handle = client.workflow.getHandle(workflowId);
    const history = await handle.fetchHistory();
    const startEvent = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    assert.ok(startEvent, `no start event for ${workflowId}`);
    assert.equal(startEvent.identity, 'webui', 'started by someone other than the Web UI');
    assert.equal(startEvent.workflowType?.name, 'hardeningRun');
    assert.equal(startEvent.taskQueue?.name, ioQueue);
    const payloads = startEvent.input?.payloads ?? [];
    assert.equal(payloads.length, 1, 'the workflow takes exactly one argument, the spec');
    assert.equal(Buffer.from(payloads[0].metadata?.encoding ?? new Uint8Array()).toString(), 'json/plain');
    assert.deepEqual(JSON.parse(Buffer.from(payloads[0].data ?? new Uint8Array()).toString()), spec);

    const summary = RunSummary.parse(
      await Promise.race([
        handle.result(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`${workflowId} did not complete within 60 s`)), 60_000).unref(),
        ),
      ]),
    );
    assert.equal(summary.status, 'completed');
    assert.equal(summary.modelName, 'minimal');
    assert.equal(summary.artifact?.version, 'v7');
    // The activities ran on the queues of the spec that was typed into the form.
    const queuesOf = (name: string) => fakes.calls.filter((c) => c.name === name).map((c) => c.taskQueue);
    assert.deepEqual(queuesOf('fetchDataset'), [ioQueue]);
    assert.deepEqual(queuesOf('adversarialTrain'), [heavyQueue]);

    // The workflow's page in the Web UI shows it completed.
    await shots.step(page, 'open the workflow page', async () => {
      await page.goto(workflowUiLink(ui, ns, workflowId));
      await page.getByText(workflowId).first().waitFor();
      await page.getByText('Completed', { exact: true }).first().waitFor();
    });
    await shots.take(page, 'workflow-page');
    passed = true;
  });
});
