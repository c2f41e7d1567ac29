// `tempered resume <workflow-id> [--wait] [--json]`: continue a failed, cancelled or timed-out run in a new
// execution that reuses what the earlier one finished (client/resume.ts).
import { parseArgs } from 'node:util';
import { resumeHardeningRun } from '../client/resume';
import { log, positional, print, printJson, runLink, withClient } from './common';
import type { Command } from './main';
import { finishRun } from './run';

const USAGE = 'tempered resume <workflow-id> [--wait] [--json] [--queue <task-queue>]';

const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Continues a run that failed, was cancelled or timed out, as a new execution of the same workflow id: the',
  'dataset, the baseline model and the baseline metrics the earlier execution finished are reused, and training',
  'continues from its newest valid checkpoint. A run that is still running or that completed is refused.',
  '',
  '  --wait           follow the run, then print the result table (exit codes as for tempered run)',
  '  --json           print JSON',
  '  --queue <q>      task queue of the workflow (default the earlier run’s)',
].join('\n');

export const resumeCommand: Command = {
  summary: 'continue a failed, cancelled or timed-out run, reusing its finished stages',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h', default: false },
        json: { type: 'boolean', default: false },
        wait: { type: 'boolean', default: false },
        queue: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      print(HELP);
      return 0;
    }
    const id = positional(positionals, 'workflow-id', USAGE);
    return withClient(async (client) => {
      const run = await resumeHardeningRun(client, id, { taskQueue: values.queue });
      const link = runLink(client, id);
      const reused = run.reused.length > 0 ? run.reused.join(', ') : 'nothing';
      const line = `resumed ${id} (continues run ${run.resumedFrom.temporalRunId}; reuses ${reused})`;
      if (!values.wait) {
        if (values.json) printJson({ workflowId: id, resumedFrom: run.resumedFrom, reused: run.reused, link });
        else print(`${line}\n${link}`);
        return 0;
      }
      log(`${line}  ${link}`);
      return finishRun(client, run, { json: values.json });
    });
  },
};
