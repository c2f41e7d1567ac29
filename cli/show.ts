// `tempered show <id> [--json]`: a running run's progress, or a finished run's result.
import { parseArgs } from 'node:util';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { getHardeningRun } from '../client/index';
import { log, positional, print, printJson, runLink, withClient } from './common';
import { EXIT, exitCodeFor, formatProgress, formatResultTable } from './format';
import type { Command } from './main';
import { failureLine } from './run';

/**
 * A failed run's reason: an activity that failed for good ends the run as "Activity task failed", and its
 * cause holds the type and the message a person needs. Returns the error with the innermost typed cause lifted
 * to the top (the workflow's own typed failures are kept as they are).
 */
export function innermostTyped(err: Error): Error {
  if (!(err instanceof WorkflowFailedError)) return err;
  let cause = err.cause as (Error & { type?: string; activityType?: string }) | undefined;
  let activity: string | undefined;
  while (cause && !cause.type && cause.cause instanceof Error) {
    activity = cause.activityType ?? activity;
    cause = cause.cause as Error & { type?: string };
  }
  if (!cause || cause === err.cause) return err;
  const lifted = Object.assign(new Error(activity ? `${activity}: ${cause.message}` : cause.message), {
    type: cause.type,
  });
  return new WorkflowFailedError(err.message, lifted, err.retryState);
}

const USAGE = 'tempered show <workflow-id> [--json]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'A running run: its stage, training position (epoch, batch, ε, loss, images/s), metrics so far and gate',
  'state. A finished run: the result table. Exit 0 running or completed, 3 rejected, 4 cancelled, 1 failed.',
  '',
  '  --json           print JSON (RunProgress while running, RunSummary when finished)',
].join('\n');

export const showCommand: Command = {
  summary: 'show one run: progress while it runs, the result when it ended',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h', default: false }, json: { type: 'boolean', default: false } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      print(HELP);
      return 0;
    }
    const id = positional(positionals, 'workflow-id', USAGE);
    return withClient(async (client) => {
      const run = getHardeningRun(client, id);
      const link = runLink(client, id);
      let status: string;
      try {
        status = (await run.temporal.describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          log(`no workflow with id ${id} in namespace ${client.options.namespace}`);
          return EXIT.failed;
        }
        throw err;
      }
      if (status === 'RUNNING') {
        const progress = await run.progress();
        if (values.json) printJson({ workflowId: id, temporalStatus: status, link, progress });
        else print(formatProgress(progress, { workflowId: id, link }));
        return 0;
      }
      if (status === 'COMPLETED') {
        const summary = await run.result();
        if (values.json) printJson({ workflowId: id, temporalStatus: status, link, ...summary });
        else print(formatResultTable(summary, { workflowId: id, link }));
        return exitCodeFor(summary.status);
      }
      const line = await run.result().then(
        () => `ended ${status}`,
        (err: Error) => failureLine(innermostTyped(err)),
      );
      if (values.json) printJson({ workflowId: id, temporalStatus: status, status: 'failed', error: line, link });
      else print(`run ${id}: ${status}\n${line}\ntemporal  ${link}`);
      return EXIT.failed;
    });
  },
};
