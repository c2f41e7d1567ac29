// `tempered demo`: the README's main command. Starts the local stack (installing the servers' binaries when
// missing) and a worker in this process, hardens the reference CNN on Fashion-MNIST at ε = 0.1 (training a
// baseline first when no production model exists yet), shows live progress, and ends with the result table.
// The stack keeps running afterwards so the Temporal UI and the artifacts can be looked at; `tempered down`
// stops it. Ctrl-C during the run stops the worker and whatever the demo started.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../infra/config';
import type { StackInfo } from '../infra/stack';
import { DEFAULT_DATASET_SOURCE } from '../schemas/spec';
import { UsageError, defineCommand } from './command';
import { loadSpecOrReport, log, workerLogFile } from './common';

const HELP = [
  '',
  'Hardens the reference CNN on Fashion-MNIST (ε = 0.1) on the local stack, end to end, in about 10 minutes',
  'on 2 CPU cores: starts Temporal + SeaweedFS (tempered up), a worker in this process, and a run of the spec.',
  '',
  'Options:',
  '  --spec FILE   the spec to run (default examples/fashion-mnist-demo.yaml)',
  '  --stop        stop the local stack when the run ends (default: leave it up for the UI; `tempered down`)',
  '  --json        print the RunSummary as JSON instead of the table',
  "  --verbose     the Temporal SDK's and the bundler's log lines on stderr (default: into <home>/logs/worker.log)",
];

/** On a fresh Debian machine, as root: the Fashion-MNIST files come from the dataset-fashion-mnist package. */
function installDataset(): void {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) return;
  log('tempered demo: installing Debian package dataset-fashion-mnist (Fashion-MNIST files)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', 'dataset-fashion-mnist'],
  ]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) return;
  }
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'harden the reference CNN on Fashion-MNIST end to end on the local stack (the README demo)',
  usage: 'tempered demo [--spec FILE] [--stop] [--json] [--verbose]',
  help: HELP,
  json: true,
  options: {
    spec: { type: 'string' },
    stop: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
  async run({ values, json }) {
    const specPath = values.spec ?? join(REPO_ROOT, 'examples', 'fashion-mnist-demo.yaml');
    const spec = await loadSpecOrReport(specPath);
    if (!spec) return 2;
    if (spec.dataset.source === DEFAULT_DATASET_SOURCE && !existsSync(DEFAULT_DATASET_SOURCE)) installDataset();
    if (spec.dataset.source === DEFAULT_DATASET_SOURCE && !existsSync(DEFAULT_DATASET_SOURCE)) {
      throw new UsageError(
        `Fashion-MNIST is not at ${DEFAULT_DATASET_SOURCE}: apt-get install dataset-fashion-mnist (or set ` +
          'dataset.source in a spec of your own and pass --spec)',
      );
    }

    const { connectClient, startHardeningRun } = await import('../client/index');
    const { down, up } = await import('../infra/stack');
    const { runWorker } = await import('../worker/main');
    const { finishRun } = await import('./follow');
    const started = Date.now();
    log('tempered demo: starting the local stack (Temporal dev server + SeaweedFS S3)…');
    const stack: StackInfo = await up({ log: (line) => log(`  ${line}`) });
    const stopStack = values.stop || stack.startedHere ? async () => void (await down()) : async () => {};
    const abort = new AbortController();
    const interrupted = () => {
      log('\ntempered demo: interrupted; stopping the worker and the stack it started');
      abort.abort();
    };
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);

    let ready!: () => void;
    const workerReady = new Promise<void>((r) => (ready = r));
    const worker = runWorker({
      signal: abort.signal,
      handleSignals: false,
      ioQueue: spec.compute.ioQueue,
      heavyQueue: spec.compute.heavyQueue,
      logFile: values.verbose ? undefined : workerLogFile(),
      log: (line) => log(`  ${line}`),
      onReady: () => ready(),
    });
    worker.catch(() => ready());
    await Promise.race([workerReady, worker]);

    let code = 1;
    try {
      const client = await connectClient();
      const run = await startHardeningRun(client, spec);
      log(`tempered demo: started run ${run.workflowId}; live progress below (the UI shows it too)`);
      const follow = finishRun(client, run, { json, batchSize: spec.training.batchSize });
      const aborted = new Promise<number>((resolve) =>
        abort.signal.addEventListener('abort', () => {
          void run.cancel('demo interrupted').catch(() => undefined);
          resolve(130);
        }),
      );
      code = await Promise.race([follow, aborted]);
      await client.connection.close();
    } finally {
      abort.abort();
      await worker.catch((err: unknown) => log(`worker: ${(err as Error).message}`));
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      const minutes = ((Date.now() - started) / 60_000).toFixed(1);
      if (code === 130 || values.stop) {
        await stopStack();
        log(`tempered demo: stopped after ${minutes} min; the stack is down`);
      } else {
        log(
          [
            '',
            `tempered demo: done in ${minutes} min. The stack keeps running:`,
            `  Temporal UI  ${stack.temporal.uiUrl ?? '(external server)'}`,
            `  S3           ${stack.s3.url} (keys in ${join(stack.home, 's3-credentials.json')})`,
            '  stop it with `npx tempered down`',
          ].join('\n'),
        );
      }
    }
    return code;
  },
});
