// `tempered resume <workflow-id> [--wait] [--json]`: continue a failed, cancelled or timed-out run in a new
// execution that reuses what the earlier one finished (client/resume.ts).
import { defineCommand } from './command';
import { log, positional, print, printJson } from './common';

const USAGE = 'tempered resume <workflow-id> [--wait] [--json] [--queue <task-queue>]';

export const resumeCommand = defineCommand({
  name: 'resume',
  summary: 'continue a failed, cancelled or timed-out run, reusing its finished stages',
  usage: USAGE,
  help: [
    '',
    'Continues a run that failed, was cancelled or timed out, as a new execution of the same workflow id: the',
    'dataset, the baseline model and the baseline metrics the earlier execution finished are reused, and training',
    'continues from its newest valid checkpoint. A run that is still running or that completed is refused.',
    '',
    '  --wait           follow the run, then print the result table (exit codes as for tempered run)',
    '  --json           print JSON',
    '  --queue <q>      task queue of the workflow (default the earlier run’s)',
  ],
  json: true,
  positionals: true,
  options: { wait: { type: 'boolean', default: false }, queue: { type: 'string' } },
  async run({ values, positionals, json }) {
    const id = positional(positionals, 'workflow-id', USAGE);
    // Loaded here so `tempered --help` does not pay for the Temporal client.
    const { resumeHardeningRun } = await import('../client/resume');
    const { runLink, withClient } = await import('./client-session');
    const { finishRun } = await import('./follow');
    return withClient(async (client) => {
      const run = await resumeHardeningRun(client, id, { taskQueue: values.queue });
      const link = runLink(client, id);
      const reused = run.reused.length > 0 ? run.reused.join(', ') : 'nothing';
      const line = `resumed ${id} (continues run ${run.resumedFrom.temporalRunId}; reuses ${reused})`;
      if (!values.wait) {
        if (json) printJson({ workflowId: id, resumedFrom: run.resumedFrom, reused: run.reused, link });
        else print(`${line}\n${link}`);
        return 0;
      }
      log(`${line}  ${link}`);
      return finishRun(client, run, { json });
    });
  },
});
