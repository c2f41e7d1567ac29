// `tempered show <id> [--json]`: a running run's progress, or a finished run's result.
import { defineCommand } from './command';
import { log, positional, print, printJson } from './common';
import { EXIT, exitCodeFor, formatProgress, formatResultTable } from './format';

const USAGE = 'tempered show <workflow-id> [--json]';

export const showCommand = defineCommand({
  name: 'show',
  summary: 'show one run: progress while it runs, the result when it ended',
  usage: USAGE,
  help: [
    '',
    'A running run: its stage, training position (epoch, batch, ε, loss, images/s), metrics so far and gate',
    'state. A finished run: the result table. Exit 0 running or completed, 3 rejected, 4 cancelled, 1 failed.',
    '',
    '  --json           print JSON (RunProgress while running, RunSummary when finished)',
  ],
  json: true,
  positionals: true,
  async run({ positionals, json }) {
    const id = positional(positionals, 'workflow-id', USAGE);
    const { WorkflowNotFoundError } = await import('@temporalio/client');
    const { getHardeningRun, queuesWithoutWorkers } = await import('../client/index');
    const { runLink, withClient } = await import('./client-session');
    const { failureLine } = await import('./follow');
    return withClient(async (client) => {
      const run = getHardeningRun(client, id);
      const link = runLink(client, id);
      let status: string;
      let taskQueue: string;
      try {
        ({
          status: { name: status },
          taskQueue,
        } = await run.temporal.describe());
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          log(`no workflow with id ${id} in namespace ${client.options.namespace}`);
          return EXIT.failed;
        }
        throw err;
      }
      if (status === 'RUNNING') {
        const idle = await queuesWithoutWorkers(client, [{ name: taskQueue, kinds: ['workflow'] }]).catch(() => []);
        if (idle.length > 0) {
          // Without a worker the progress query cannot be answered: say what the run waits for instead.
          const waiting = `no worker is polling ${taskQueue}: the run waits until one does (tempered worker)`;
          if (json) printJson({ workflowId: id, temporalStatus: status, link, waiting });
          else print(`run ${id}: running\n${waiting}\ntemporal  ${link}`);
          return 0;
        }
        const progress = await run.liveProgress();
        if (json) printJson({ workflowId: id, temporalStatus: status, link, progress });
        else print(formatProgress(progress, { workflowId: id, link }));
        return 0;
      }
      if (status === 'COMPLETED') {
        const summary = await run.result();
        if (json) printJson({ temporalStatus: status, link, ...summary });
        else print(formatResultTable(summary, { workflowId: id, link }));
        return exitCodeFor(summary.status);
      }
      const line = await run.result().then(
        () => `ended ${status}`,
        (err: Error) => failureLine(err),
      );
      if (json) printJson({ workflowId: id, temporalStatus: status, status: 'failed', error: line, link });
      else print(`run ${id}: ${status}\n${line}\ntemporal  ${link}`);
      return EXIT.failed;
    });
  },
});
