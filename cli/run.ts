// `tempered run <spec> [--wait] [--json] [--id ID]`: start a hardening run through the client SDK; with --wait,
// draw the progress line on stderr every second and print the result table.
import { defineCommand } from './command';
import { loadSpecOrReport, log, print, printJson, positional } from './common';
import { EXIT } from './format';

const USAGE = 'tempered run <spec.yaml> [--wait] [--json] [--id <workflow-id>] [--queue <task-queue>]';

export const runCommand = defineCommand({
  name: 'run',
  summary: 'start a hardening run from a spec; --wait follows it to the result',
  usage: USAGE,
  help: [
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
  ],
  json: true,
  positionals: true,
  options: {
    wait: { type: 'boolean', default: false },
    id: { type: 'string' },
    queue: { type: 'string' },
    interval: { type: 'string' },
    'no-cache': { type: 'boolean', default: false },
  },
  async run({ values, positionals, json }) {
    const file = positional(positionals, 'spec', USAGE);
    const intervalMs = values.interval === undefined ? 1000 : Number(values.interval) * 1000;
    if (!(intervalMs > 0)) throw new Error(`--interval: expected a positive number of seconds, got ${values.interval}`);
    const spec = await loadSpecOrReport(file);
    if (!spec) return EXIT.usage;
    if (values['no-cache']) spec.compute.cache = false;
    const { getHardeningRun, queuesWithoutWorkers, startHardeningRun } = await import('../client/index');
    const { runLink, withClient } = await import('./client-session');
    const { finishRun } = await import('./follow');
    return withClient(async (client) => {
      const started = await startHardeningRun(client, spec, { workflowId: values.id, taskQueue: values.queue });
      const link = runLink(client, started.workflowId);
      const { ioQueue, heavyQueue } = spec.compute;
      const idle = await queuesWithoutWorkers(client, [
        { name: values.queue ?? ioQueue, kinds: ['workflow'] },
        { name: ioQueue, kinds: ['activity'] },
        { name: heavyQueue, kinds: ['activity'] },
      ]).catch(() => []);
      if (idle.length > 0)
        log(`warning: no worker polls ${idle.join(', ')}; the run waits until one does (tempered worker)`);
      if (!values.wait) {
        if (json) printJson({ workflowId: started.workflowId, temporalRunId: started.temporalRunId, link });
        else print(`started ${started.workflowId}\n${link}`);
        return 0;
      }
      log(`started ${started.workflowId}  ${link}`);
      // Follow the workflow id (not the first run id), so a continued-as-new run is followed too.
      const run = getHardeningRun(client, started.workflowId);
      return finishRun(client, run, { json, batchSize: spec.training.batchSize, intervalMs });
    });
  },
});
