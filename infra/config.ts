import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Connection } from '../storage/connection';
import { DEFAULT_DATASET_SOURCE } from '../schemas/spec';
import { DEFAULT_S3_REGION, formatS3Endpoint, parseS3Endpoint } from '../storage/connection';

/** The repository root (the folder holding `infra/`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every loopback port the local stack listens on. */
export interface StackPorts {
  /** Temporal frontend gRPC. Default 17233, env TEMPERED_TEMPORAL_PORT. */
  temporal: number;
  /** Temporal Web UI. Default 18233, env TEMPERED_TEMPORAL_UI_PORT. */
  temporalUi: number;
  /** Temporal HTTP API. Default 17234, env TEMPERED_TEMPORAL_HTTP_PORT. */
  temporalHttp: number;
  /** Temporal server's Prometheus `/metrics`. Default 17235, env TEMPERED_TEMPORAL_METRICS_PORT. */
  temporalMetrics: number;
  /** SeaweedFS S3 gateway. Default 18333, env TEMPERED_S3_PORT. */
  s3: number;
  /** SeaweedFS internal ports, moved off 8333/9333/9340/8888/23646 and their +10000 gRPC twins. */
  s3Grpc: number;
  weedMaster: number;
  weedMasterGrpc: number;
  weedVolume: number;
  weedVolumeGrpc: number;
  weedFiler: number;
  weedFilerGrpc: number;
  weedAdmin: number;
  weedAdminGrpc: number;
}

export const DEFAULT_PORTS: StackPorts = {
  temporal: 17233,
  temporalUi: 18233,
  temporalHttp: 17234,
  temporalMetrics: 17235,
  s3: 18333,
  s3Grpc: 18334,
  weedMaster: 18335,
  weedMasterGrpc: 18336,
  weedVolume: 18337,
  weedVolumeGrpc: 18338,
  weedFiler: 18339,
  weedFilerGrpc: 18340,
  weedAdmin: 18341,
  weedAdminGrpc: 18342,
};

export const PORT_NAMES = Object.keys(DEFAULT_PORTS) as (keyof StackPorts)[];

/** `temporalUi` → `TEMPERED_TEMPORAL_UI_PORT`. */
export function portEnvName(name: keyof StackPorts): string {
  return `TEMPERED_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_PORT`;
}

function checkPort(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`${what}: expected a port number from 1 to 65535, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Ports from defaults, then env (TEMPERED_*_PORT), then explicit options; all distinct. */
export function resolvePorts(env: NodeJS.ProcessEnv, overrides: Partial<StackPorts> = {}): StackPorts {
  const ports = { ...DEFAULT_PORTS };
  for (const name of PORT_NAMES) {
    const fromEnv = env[portEnvName(name)];
    if (fromEnv !== undefined && fromEnv !== '') ports[name] = checkPort(fromEnv, portEnvName(name));
    if (overrides[name] !== undefined) ports[name] = checkPort(overrides[name], `ports.${name}`);
  }
  const seen = new Map<number, string>();
  for (const name of PORT_NAMES) {
    const other = seen.get(ports[name]);
    if (other) throw new Error(`ports.${name} and ports.${other} are both ${ports[name]}: each needs its own port`);
    seen.set(ports[name], name);
  }
  return ports;
}

/** `<repo>/.tempered`, or TEMPERED_HOME. */
export function resolveHome(env: NodeJS.ProcessEnv = process.env, home?: string): string {
  return resolve(home ?? (env.TEMPERED_HOME || join(REPO_ROOT, '.tempered')));
}

/** Where the stack keeps its files under `home`. */
export function stackPaths(home: string) {
  return {
    home,
    temporalDir: join(home, 'temporal'),
    temporalDb: join(home, 'temporal', 'temporal.db'),
    s3Dir: join(home, 's3'),
    credentials: join(home, 's3-credentials.json'),
    identities: join(home, 's3-identities.json'),
    logs: join(home, 'logs'),
    temporalLog: join(home, 'logs', 'temporal.log'),
    weedLog: join(home, 'logs', 'weed.log'),
    watchdogLog: join(home, 'logs', 'watchdog.log'),
    run: join(home, 'run'),
    temporalPid: join(home, 'run', 'temporal.pid'),
    weedPid: join(home, 'run', 'weed.pid'),
    watchdogPid: join(home, 'run', 'watchdog.pid'),
    state: join(home, 'run', 'stack.json'),
    lock: join(home, 'run', 'lock'),
  };
}

export type StackPaths = ReturnType<typeof stackPaths>;

export interface S3Credentials {
  accessKey: string;
  secretKey: string;
}

/**
 * S3 credentials from the environment: S3_ACCESS_KEY/S3_SECRET_KEY, else MINIO_ROOT_USER/MINIO_ROOT_PASSWORD,
 * else MINIO_ACCESS_KEY/MINIO_SECRET_KEY. Half a pair is an error naming the missing variable.
 */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): S3Credentials | undefined {
  const pairs = [
    ['S3_ACCESS_KEY', 'S3_SECRET_KEY'],
    ['MINIO_ROOT_USER', 'MINIO_ROOT_PASSWORD'],
    ['MINIO_ACCESS_KEY', 'MINIO_SECRET_KEY'],
  ] as const;
  for (const [keyVar, secretVar] of pairs) {
    const accessKey = env[keyVar];
    const secretKey = env[secretVar];
    if (accessKey && secretKey) return { accessKey, secretKey };
    if (accessKey || secretKey) {
      throw new Error(
        `${accessKey ? secretVar : keyVar} is not set but ${accessKey ? keyVar : secretVar} is: set both`,
      );
    }
  }
  return undefined;
}

/** Credentials generated once for a local stack and kept (mode 0600) in `<home>/s3-credentials.json`. */
export function localCredentials(paths: StackPaths, create: boolean): S3Credentials | undefined {
  if (existsSync(paths.credentials)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(paths.credentials, 'utf8'));
    } catch (err) {
      throw new Error(`${paths.credentials}: expected JSON {"accessKey","secretKey"}: ${(err as Error).message}`);
    }
    const c = parsed as Partial<S3Credentials>;
    if (typeof c.accessKey !== 'string' || typeof c.secretKey !== 'string' || !c.accessKey || !c.secretKey) {
      throw new Error(`${paths.credentials}: expected non-empty string fields accessKey and secretKey`);
    }
    return { accessKey: c.accessKey, secretKey: c.secretKey };
  }
  if (!create) return undefined;
  const creds = {
    accessKey: `TEMPERED${randomBytes(6).toString('hex').toUpperCase()}`,
    secretKey: randomBytes(30).toString('base64url'),
  };
  mkdirSync(dirname(paths.credentials), { recursive: true });
  writeFileSync(paths.credentials, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(paths.credentials, 0o600);
  return creds;
}

/** What `run/stack.json` records about a local stack. */
export interface StackState {
  ports: StackPorts;
  namespace: string;
  temporalBin?: string;
  weedBin?: string;
  startedAt: string;
}

export function readState(paths: StackPaths): StackState | undefined {
  if (!existsSync(paths.state)) return undefined;
  try {
    return JSON.parse(readFileSync(paths.state, 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

/** How every part of tempered reaches Temporal and the object store. */
export interface Connections {
  temporal: { address: string; namespace: string };
  s3: S3Connection;
  /** Where each came from: the environment, or the local stack recorded under TEMPERED_HOME. */
  source: { temporal: 'env' | 'local-stack'; s3: 'env' | 'local-stack' };
}

export interface ResolveConnectionsOptions {
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default TEMPERED_HOME or `<repo>/.tempered`. */
  home?: string;
  /** Fall back to the stack `tempered up` recorded under home when the env names no server. Default true. */
  useLocalStack?: boolean;
}

/**
 * Connections from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, S3_ENDPOINT, S3_REGION and the S3 keys (S3_ACCESS_KEY /
 * S3_SECRET_KEY, or the MINIO_* names). What the env does not give comes from the local stack (`tempered up`)
 * unless `useLocalStack` is false; anything still missing is an error naming the variable to set.
 */
export function resolveConnections(options: ResolveConnectionsOptions = {}): Connections {
  const { env = process.env, useLocalStack = true } = options;
  const paths = stackPaths(resolveHome(env, options.home));
  const state = useLocalStack ? readState(paths) : undefined;
  const hint = useLocalStack ? ' or start the local stack with `tempered up`' : '';

  let address = env.TEMPORAL_ADDRESS;
  const temporalSource = address ? 'env' : 'local-stack';
  if (!address) {
    if (!state) throw new Error(`no Temporal server: set TEMPORAL_ADDRESS (host:port)${hint}`);
    address = `127.0.0.1:${state.ports.temporal}`;
  }
  if (!/^[^\s/]+:\d+$/.test(address)) {
    throw new Error(`TEMPORAL_ADDRESS: expected host:port like 127.0.0.1:7233, got ${JSON.stringify(address)}`);
  }
  const namespace = env.TEMPORAL_NAMESPACE || state?.namespace || 'default';

  const endpoint = env.S3_ENDPOINT || (state ? `http://127.0.0.1:${state.ports.s3}` : undefined);
  if (!endpoint) throw new Error(`no S3 store: set S3_ENDPOINT (e.g. http://127.0.0.1:9000)${hint}`);
  const s3Source = env.S3_ENDPOINT ? 'env' : 'local-stack';
  const creds = credentialsFromEnv(env) ?? (useLocalStack ? localCredentials(paths, false) : undefined);
  if (!creds) {
    throw new Error(
      `no S3 credentials: set S3_ACCESS_KEY and S3_SECRET_KEY (or MINIO_ROOT_USER/MINIO_ROOT_PASSWORD)${hint}`,
    );
  }
  return {
    temporal: { address, namespace },
    s3: { ...parseS3Endpoint(endpoint), ...creds, region: env.S3_REGION || DEFAULT_S3_REGION },
    source: { temporal: temporalSource, s3: s3Source },
  };
}

/** The env vars that hand connections to a child process (the inverse of {@link resolveConnections}). */
export function connectionEnv(conn: Pick<Connections, 'temporal' | 's3'>): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: conn.temporal.address,
    TEMPORAL_NAMESPACE: conn.temporal.namespace,
    S3_ENDPOINT: formatS3Endpoint(conn.s3),
    S3_ACCESS_KEY: conn.s3.accessKey,
    S3_SECRET_KEY: conn.s3.secretKey,
    S3_REGION: conn.s3.region,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// What a worker allows and caps (see docs/security.md). Every variable is read here, once.

/** The folder the default spec reads (Fashion-MNIST); allowed unless TEMPERED_DATASET_ROOTS says otherwise. */
export const DEFAULT_DATASET_ROOT = DEFAULT_DATASET_SOURCE;

export interface WorkerLimits {
  /** Local folders datasets may come from. TEMPERED_DATASET_ROOTS (`:`-separated); default the Fashion-MNIST folder. */
  roots: string[];
  /** Buckets datasets may come from. TEMPERED_DATASET_BUCKETS (comma-separated, `*` any); default none. */
  buckets: string[];
  /**
   * HTTP(S) hosts datasets may come from. TEMPERED_DATASET_HOSTS (comma-separated `host` or `host:port`, `*` any
   * host with public addresses); default `*`. Loopback, link-local and private addresses only when listed by name.
   */
  hosts: string[];
  /** Seconds for an HTTP connection + headers, and between body chunks. TEMPERED_HTTP_TIMEOUT_S; default 30. */
  httpTimeoutS: number;
  /** Largest dataset in MiB (files and pixels). TEMPERED_MAX_DATASET_MIB; default 2048. */
  maxDatasetMiB: number;
}

/** A positive number from `env[name]`, or `fallback` when unset; anything else is an error naming the variable. */
export function positiveNumberEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name}=${JSON.stringify(raw)}: expected a positive number`);
  return value;
}

const list = (raw: string | undefined, separator: string | RegExp) =>
  (raw ?? '')
    .split(separator)
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** The worker's allow-list and caps from the environment; a malformed value stops the worker at start. */
export function workerLimits(env: NodeJS.ProcessEnv = process.env): WorkerLimits {
  const roots =
    env.TEMPERED_DATASET_ROOTS === undefined ? [DEFAULT_DATASET_ROOT] : list(env.TEMPERED_DATASET_ROOTS, ':');
  for (const r of roots) {
    if (!r.startsWith('/')) throw new Error(`TEMPERED_DATASET_ROOTS: ${JSON.stringify(r)} is not an absolute path`);
  }
  const buckets = list(env.TEMPERED_DATASET_BUCKETS, ',');
  const hosts = env.TEMPERED_DATASET_HOSTS === undefined ? ['*'] : list(env.TEMPERED_DATASET_HOSTS, ',');
  return {
    roots,
    buckets,
    hosts,
    httpTimeoutS: positiveNumberEnv(env, 'TEMPERED_HTTP_TIMEOUT_S', 30),
    maxDatasetMiB: positiveNumberEnv(env, 'TEMPERED_MAX_DATASET_MIB', 2048),
  };
}
