// `tempered worker [--queues io,heavy] [--metrics-port N] [--threads N] [--verbose]`: a thin wrapper over worker/main's runWorker.
import { UsageError, defineCommand } from './command';
import { positiveInt, workerLogFile } from './common';

const HELP = [
  '',
  'Runs a tempered worker until SIGINT/SIGTERM: the io queue (workflows, fetch, promote, report) and the heavy',
  'queue (training, evaluation), or only the ones named. Connections come from TEMPORAL_ADDRESS / S3_ENDPOINT',
  'or the local stack (`tempered up`).',
  '',
  '  --queues <list>       io, heavy or io,heavy (default both)',
  '  --metrics-port <n>    app metrics (/metrics) port (default 9465, TEMPERED_METRICS_PORT; 0 = any free)',
  "  --io-queue <name>     default tempered-io (TEMPERED_IO_QUEUE); must match the specs' compute.ioQueue",
  '  --heavy-queue <name>  default tempered-heavy (TEMPERED_HEAVY_QUEUE)',
  '  --backend <name>      tensorflow-gpu, tensorflow, wasm or cpu (default: the first that starts); the heavy',
  '                        worker polls <heavy-queue>@<backend>, where runs whose compute.backend names it go, and',
  "                        the plain heavy queue unless the backend is not this machine's best (tempered doctor)",
  '  --threads <n>         cores the heavy work uses (default: all of them, 1 on tensorflow-gpu;',
  '                        TEMPERED_WORKER_THREADS): a training takes them all, an evaluation shard one, so',
  '                        that many shards of an evaluation run side by side',
  "  --verbose             the Temporal SDK's and the bundler's log lines on stderr (default: into",
  '                        <home>/logs/worker.log, whose path is printed once)',
];

export function parseQueues(value: string | undefined): ('io' | 'heavy')[] | undefined {
  if (value === undefined) return undefined;
  const queues = value.split(',').map((q) => q.trim());
  for (const q of queues) {
    if (q !== 'io' && q !== 'heavy')
      throw new UsageError(`--queues: expected io, heavy or io,heavy, got ${JSON.stringify(value)}`);
  }
  return [...new Set(queues)] as ('io' | 'heavy')[];
}

export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'run a worker for the io and heavy task queues',
  usage:
    'tempered worker [--queues io,heavy] [--metrics-port <port>] [--io-queue <q>] [--heavy-queue <q>] [--backend <name>] [--threads <n>] [--verbose]',
  help: HELP,
  options: {
    queues: { type: 'string' },
    'metrics-port': { type: 'string' },
    'io-queue': { type: 'string' },
    'heavy-queue': { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
  async run({ values }) {
    const queues = parseQueues(values.queues);
    const metricsPort = values['metrics-port'] === '0' ? 0 : positiveInt(values['metrics-port'], '--metrics-port');
    const threads = positiveInt(values.threads, '--threads');
    // Loaded lazily so the other commands never pay for the worker and its tfjs.
    const { runWorker } = await import('../worker/main');
    const backend = values.backend;
    const names = (await import('../tensor/backend/probe')).probeBackends().map((p) => p.name as string);
    if (backend !== undefined && !names.includes(backend)) {
      throw new UsageError(`--backend: expected one of ${names.join(', ')}, got ${JSON.stringify(backend)}`);
    }
    await runWorker({
      queues,
      metricsPort,
      ioQueue: values['io-queue'],
      heavyQueue: values['heavy-queue'],
      ...(backend ? { backend } : {}),
      ...(threads ? { threads } : {}),
      logFile: values.verbose ? undefined : workerLogFile(),
    });
    return 0;
  },
});
