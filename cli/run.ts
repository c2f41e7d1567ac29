// `tempered run <spec> [--wait] [--json] [--id ID]`: start a hardening run through the client SDK; with --wait,
// draw the progress line on stderr every second and print the result table.
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { HardeningRunHandle } from '../client/index';
import { getHardeningRun, startHardeningRun } from '../client/index';
import type { RunSummary } from '../schemas/payloads';
import { EXIT, exitCodeFor, formatProgressLine, formatResultTable } from './format';
import { loadSpecOrReport, log, print, printJson, positional, runLink, withClient } from './common';
import type { Command } from './main';

const USAGE = 'tempered run <spec.yaml> [--wait] [--json] [--id <workflow-id>] [--queue <task-queue>]';

const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Validates the spec and starts a hardening run (workflow hardeningRun) on Temporal. Prints the workflow id',
  'and the link to the run in the Temporal Web UI.',
  '',
  '  --wait           follow the run: a progress line on stderr every second, then the result table.',
  '                   Exit 0 completed, 3 rejected, 4 cancelled, 1 failed.',
  '  --json           print JSON (the started run; with --wait the RunSummary)',
  '  --id <id>        workflow id (default harden-<modelName>-<YYYYMMDD-HHmmss>); a running one is refused',
  '  --queue <q>      task queue of the workflow (default spec.compute.ioQueue)',
  '  --interval <s>   progress poll interval in seconds with --wait (default 1)',
  "  --no-cache       recompute every stage (compute.cache: false) instead of reusing earlier runs' outputs",
].join('\n');

export interface FollowOptions {
  /** Draws each progress line (default: rewrites one stderr line on a TTY, else prints changed lines). */
  draw?: (line: string) => void;
  intervalMs?: number;
  batchSize?: number;
}

/** Polls the progress query until the run ends; returns its summary, or the failure. */
export async function followRun(
  run: HardeningRunHandle,
  options: FollowOptions = {},
): Promise<{ summary?: RunSummary; error?: Error }> {
  const { intervalMs = 1000, batchSize } = options;
  const tty = process.stderr.isTTY;
  let last = '';
  const draw =
    options.draw ??
    ((line: string) => {
      if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
      else if (line !== last) process.stderr.write(`${line}\n`);
      last = line;
    });
  let done = false;
  const outcome = run.result().then(
    (summary) => ({ summary }),
    (error: Error) => ({ error }),
  );
  void outcome.then(() => (done = true));
  while (!done) {
    try {
      draw(formatProgressLine(await run.progress(), { batchSize }));
    } catch {
      // No worker has picked the workflow up yet, or it just ended: keep waiting on the result.
      draw('waiting for a worker');
    }
    await Promise.race([outcome, new Promise((r) => setTimeout(r, intervalMs))]);
  }
  if (tty && !options.draw) process.stderr.write('\n');
  return outcome;
}

/** The one-line reason a workflow failed: its cause's type and message. */
export function failureLine(err: Error): string {
  if (err instanceof WorkflowFailedError) {
    const cause = err.cause as (Error & { type?: string }) | undefined;
    return `run failed${cause?.type ? ` (${cause.type})` : ''}: ${cause?.message ?? err.message}`;
  }
  return err.message;
}

/** Waits for `run` and prints the result table (or JSON). Returns the exit code. */
export async function finishRun(
  client: Client,
  run: HardeningRunHandle,
  options: { json: boolean; batchSize?: number; intervalMs?: number },
): Promise<number> {
  const { summary, error } = await followRun(run, { batchSize: options.batchSize, intervalMs: options.intervalMs });
  const link = runLink(client, run.workflowId);
  if (error || !summary) {
    const line = failureLine(error ?? new Error('no result'));
    if (options.json) printJson({ workflowId: run.workflowId, status: 'failed', error: line, link });
    else log(`${line}\n${link}`);
    return EXIT.failed;
  }
  if (options.json) printJson({ workflowId: run.workflowId, link, ...summary });
  else print(formatResultTable(summary, { workflowId: run.workflowId, link }));
  return exitCodeFor(summary.status);
}

export const runCommand: Command = {
  summary: 'start a hardening run from a spec file',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h', default: false },
        json: { type: 'boolean', default: false },
        wait: { type: 'boolean', default: false },
        id: { type: 'string' },
        queue: { type: 'string' },
        interval: { type: 'string' },
        'no-cache': { type: 'boolean', default: false },
      },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      print(HELP);
      return 0;
    }
    const file = positional(positionals, 'spec', USAGE);
    const intervalMs = values.interval === undefined ? 1000 : Number(values.interval) * 1000;
    if (!(intervalMs > 0)) throw new Error(`--interval: expected a positive number of seconds, got ${values.interval}`);
    const spec = await loadSpecOrReport(file);
    if (!spec) return EXIT.usage;
    if (values['no-cache']) spec.compute.cache = false;
    return withClient(async (client) => {
      const started = await startHardeningRun(client, spec, { workflowId: values.id, taskQueue: values.queue });
      const link = runLink(client, started.workflowId);
      if (!values.wait) {
        if (values.json) printJson({ workflowId: started.workflowId, runId: started.runId, link });
        else print(`started ${started.workflowId}\n${link}`);
        return 0;
      }
      log(`started ${started.workflowId}  ${link}`);
      // Follow the workflow id (not the first run id), so a continued-as-new run is followed too.
      const run = getHardeningRun(client, started.workflowId);
      return finishRun(client, run, { json: values.json, batchSize: spec.training.batchSize, intervalMs });
    });
  },
};
