import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Connection } from '../storage/connection';
import { DEFAULT_S3_REGION, formatS3Endpoint, maskSecret, parseS3Endpoint } from '../storage/connection';
import { findTemporal, findWeed } from './binaries';
import type { S3Credentials, StackPaths, StackPorts, StackState } from './config';
import {
  REPO_ROOT,
  connectionEnv,
  credentialsFromEnv,
  localCredentials,
  PORT_NAMES,
  portEnvName,
  readState,
  resolveHome,
  resolvePorts,
  stackPaths,
} from './config';
import { checkS3, checkTemporal, isCredentialError, waitUntil } from './health';
import { WEED_LOCKDOWN_ARGS, writeStoreSecurity } from './store-security';
import {
  acquireLock,
  freePorts,
  isAlive,
  isOurs,
  isPortFree,
  readPid,
  removePidFile,
  startTime,
  stopPid,
  writePid,
} from './processes';

export type { StackPorts } from './config';
export { DEFAULT_PORTS, resolveConnections, type Connections } from './config';

/** What `up` returns: how to reach each server and where its files are. */
export interface StackInfo {
  temporal: {
    address: string;
    namespace: string;
    uiUrl?: string;
    log?: string;
    pid?: number;
    /** True when TEMPORAL_ADDRESS named a server the launcher did not start. */
    external: boolean;
  };
  s3: S3Connection & { url: string; log?: string; pid?: number; external: boolean };
  home: string;
  /** Loopback ports of the local servers (absent when both are external). */
  ports?: StackPorts;
  /** True when this call started at least one server. */
  startedHere: boolean;
  /** The watchdog tying the servers to a process (`tieToPid`), when there is one. */
  watchdogPid?: number;
  logs: string;
}

export interface StackOptions {
  /** Stack folder; default TEMPERED_HOME or `<repo>/.tempered`. */
  home?: string;
  /** Port overrides; defaults DEFAULT_PORTS, then TEMPERED_*_PORT from env. */
  ports?: Partial<StackPorts>;
  /** Environment to read (TEMPORAL_ADDRESS, S3_ENDPOINT, keys, ports, binaries); default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Kill the servers this call starts when that process disappears (a detached watchdog). Default: none. */
  tieToPid?: number;
  /** Deadline for each server's health check, ms. Default 90 000. */
  timeoutMs?: number;
  /** Progress lines (secrets masked). Default: silent. */
  log?: (line: string) => void;
  /** Install missing binaries (pip, then go). Default true. */
  install?: boolean;
}

const WATCHDOG = join(REPO_ROOT, 'infra', 'watchdog.mjs');

interface Resolved {
  env: NodeJS.ProcessEnv;
  paths: StackPaths;
  log: (line: string) => void;
  externalTemporal?: string;
  externalS3?: string;
  namespace: string;
  region: string;
}

function resolveOptions(options: StackOptions): Resolved {
  const env = options.env ?? process.env;
  const paths = stackPaths(resolveHome(env, options.home));
  return {
    env,
    paths,
    log: options.log ?? (() => {}),
    externalTemporal: env.TEMPORAL_ADDRESS || undefined,
    externalS3: env.S3_ENDPOINT || undefined,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    region: env.S3_REGION || DEFAULT_S3_REGION,
  };
}

/** Command-line markers unique to one home: how a PID is recognised as this stack's server. */
const markers = (paths: StackPaths) => ({
  temporal: paths.temporalDb,
  weed: `-dir=${paths.s3Dir}`,
  watchdog: paths.watchdogPid,
});

function running(paths: StackPaths) {
  const m = markers(paths);
  const pid = (file: string, marker: string) => {
    const p = readPid(file);
    return p !== undefined && isOurs(p, marker) ? p : undefined;
  };
  return {
    temporal: pid(paths.temporalPid, m.temporal),
    weed: pid(paths.weedPid, m.weed),
    watchdog: pid(paths.watchdogPid, m.watchdog),
  };
}

function s3Credentials(r: Resolved, create: boolean): S3Credentials | undefined {
  return credentialsFromEnv(r.env) ?? localCredentials(r.paths, create);
}

function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function openLog(file: string, what: string): number {
  const fd = openSync(file, 'a');
  writeFileSync(fd, `\n=== ${new Date().toISOString()} tempered starting ${what}\n`);
  return fd;
}

function spawnServer(bin: string, args: string[], logFile: string, cwd: string, what: string): number {
  const fd = openLog(logFile, what);
  try {
    const child = spawn(bin, args, { cwd, detached: true, stdio: ['ignore', fd, fd], env: serverEnv() });
    if (child.pid === undefined) throw new Error(`could not start ${what} (${bin}): see ${logFile}`);
    child.on('error', () => {});
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** The servers get a plain environment: no credentials of ours leak into them beyond their config files. */
function serverEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}

function temporalArgs(paths: StackPaths, ports: StackPorts, namespace: string): string[] {
  return [
    'server',
    'start-dev',
    '--db-filename',
    paths.temporalDb,
    '--ip',
    '127.0.0.1',
    '--port',
    String(ports.temporal),
    '--ui-port',
    String(ports.temporalUi),
    '--http-port',
    String(ports.temporalHttp),
    '--metrics-port',
    String(ports.temporalMetrics),
    '--ui-disable-news-fetch',
    '--log-level',
    'warn',
    ...(namespace === 'default' ? [] : ['--namespace', namespace]),
  ];
}

function weedArgs(paths: StackPaths, ports: StackPorts): string[] {
  return [
    'mini',
    `-dir=${paths.s3Dir}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    '-master.telemetry=false',
    '-webdav=false',
    '-admin.ui=false',
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.config=${paths.identities}`,
    // Every other door needs a key too: see store-security.ts (security.toml in this working directory).
    ...WEED_LOCKDOWN_ARGS,
    `-s3.port=${ports.s3}`,
    `-s3.port.grpc=${ports.s3Grpc}`,
    `-master.port=${ports.weedMaster}`,
    `-master.port.grpc=${ports.weedMasterGrpc}`,
    `-volume.port=${ports.weedVolume}`,
    `-volume.port.grpc=${ports.weedVolumeGrpc}`,
    `-filer.port=${ports.weedFiler}`,
    `-filer.port.grpc=${ports.weedFilerGrpc}`,
    `-admin.port=${ports.weedAdmin}`,
    `-admin.port.grpc=${ports.weedAdminGrpc}`,
    // Its local sockets default to /tmp/seaweedfs-s3-<port>.sock, left behind on exit: keep them in the home.
    ...(paths.run.length <= 90
      ? [
          `-s3.localSocket=${join(paths.run, 'weed-s3.sock')}`,
          `-filer.localSocket=${join(paths.run, 'weed-filer.sock')}`,
        ]
      : []),
  ];
}

const TEMPORAL_PORTS: (keyof StackPorts)[] = ['temporal', 'temporalUi', 'temporalHttp', 'temporalMetrics'];
const WEED_PORTS = PORT_NAMES.filter((n) => !TEMPORAL_PORTS.includes(n));

async function assertPortsFree(ports: StackPorts, names: (keyof StackPorts)[]): Promise<void> {
  const taken: string[] = [];
  for (const name of names) {
    if (!(await isPortFree(ports[name]))) taken.push(`${ports[name]} (${name}, set ${portEnvName(name)})`);
  }
  if (taken.length > 0) {
    throw new Error(`port${taken.length > 1 ? 's' : ''} already in use on 127.0.0.1: ${taken.join(', ')}`);
  }
}

function writeIdentities(paths: StackPaths, creds: S3Credentials): void {
  const config = {
    identities: [
      {
        name: 'tempered',
        credentials: [{ accessKey: creds.accessKey, secretKey: creds.secretKey }],
        actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
      },
    ],
  };
  writeFileSync(paths.identities, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

function buildInfo(
  r: Resolved,
  state: StackState | undefined,
  pids: { temporal?: number; weed?: number; watchdog?: number },
  creds: S3Credentials,
  startedHere: boolean,
): StackInfo {
  const p = r.paths;
  const ports = state?.ports;
  const temporal = r.externalTemporal
    ? { address: r.externalTemporal, namespace: r.namespace, external: true }
    : {
        address: `127.0.0.1:${ports!.temporal}`,
        namespace: r.namespace,
        uiUrl: `http://127.0.0.1:${ports!.temporalUi}`,
        log: p.temporalLog,
        pid: pids.temporal,
        external: false,
      };
  const url = r.externalS3 ?? `http://127.0.0.1:${ports!.s3}`;
  const endpoint = parseS3Endpoint(url, r.externalS3 ? 'S3_ENDPOINT' : 's3 url');
  const s3 = {
    ...endpoint,
    ...creds,
    region: r.region,
    url: formatS3Endpoint(endpoint),
    ...(r.externalS3 ? {} : { log: p.weedLog, pid: pids.weed }),
    external: Boolean(r.externalS3),
  };
  return {
    temporal,
    s3,
    home: p.home,
    ports,
    startedHere,
    watchdogPid: pids.watchdog,
    logs: p.logs,
  };
}

/**
 * Starts the local stack (Temporal dev server, SeaweedFS) under `home`, or returns the one already running
 * there. Servers named by TEMPORAL_ADDRESS / S3_ENDPOINT are not started, only checked. Resolves once each
 * server answers a real call (DescribeNamespace, a signed ListBuckets); on failure, stops what it started and
 * throws an error naming the server, its port and its log.
 */
export async function up(options: StackOptions = {}): Promise<StackInfo> {
  const r = resolveOptions(options);
  const { paths, log } = r;
  const timeoutMs = options.timeoutMs ?? 90_000;
  const needLocal = !r.externalTemporal || !r.externalS3;
  if (needLocal) {
    for (const dir of [paths.home, paths.temporalDir, paths.s3Dir, paths.logs, paths.run]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    // The home holds keys, the store's data and Temporal's SQLite file (whole specs, in every history): owner only.
    for (const dir of [paths.home, paths.temporalDir, paths.s3Dir]) chmodSync(dir, 0o700);
  }

  const release = needLocal ? await acquireLock(paths.lock) : () => {};
  const started: { name: 'temporal' | 'weed'; pid: number }[] = [];
  try {
    const creds = r.externalS3 ? credentialsFromEnv(r.env) : s3Credentials(r, true);
    if (!creds) {
      throw new Error(
        `S3_ENDPOINT=${r.externalS3} is set but no keys: set S3_ACCESS_KEY and S3_SECRET_KEY (or MINIO_ROOT_USER/MINIO_ROOT_PASSWORD)`,
      );
    }
    const now = running(paths);
    const wantTemporal = !r.externalTemporal && now.temporal === undefined;
    const wantWeed = !r.externalS3 && now.weed === undefined;

    // Ports: a running server keeps the ports it was started with; a new one gets the requested ones.
    const previous = readState(paths);
    const requested = resolvePorts(r.env, options.ports);
    const ports = { ...requested };
    if (previous) {
      if (!wantTemporal) for (const n of TEMPORAL_PORTS) ports[n] = previous.ports[n];
      if (!wantWeed) for (const n of WEED_PORTS) ports[n] = previous.ports[n];
    }
    await assertPortsFree(ports, [...(wantTemporal ? TEMPORAL_PORTS : []), ...(wantWeed ? WEED_PORTS : [])]);

    const state: StackState = {
      ports,
      namespace: r.namespace,
      temporalBin: previous?.temporalBin,
      weedBin: previous?.weedBin,
      startedAt:
        wantTemporal || wantWeed ? new Date().toISOString() : (previous?.startedAt ?? new Date().toISOString()),
    };
    const install = options.install ?? true;
    if (wantTemporal) state.temporalBin = findTemporal({ env: r.env, install, log });
    if (wantWeed) state.weedBin = findWeed({ env: r.env, install, log });

    if (wantTemporal) {
      const pid = spawnServer(
        state.temporalBin!,
        temporalArgs(paths, ports, r.namespace),
        paths.temporalLog,
        paths.temporalDir,
        'temporal',
      );
      writePid(paths.temporalPid, pid);
      started.push({ name: 'temporal', pid });
      log(`temporal: started pid ${pid} on 127.0.0.1:${ports.temporal} (UI http://127.0.0.1:${ports.temporalUi})`);
    }
    if (wantWeed) {
      writeIdentities(paths, creds);
      writeStoreSecurity(paths.s3Dir);
      const pid = spawnServer(state.weedBin!, weedArgs(paths, ports), paths.weedLog, paths.s3Dir, 'weed mini');
      writePid(paths.weedPid, pid);
      started.push({ name: 'weed', pid });
      log(`s3: started weed pid ${pid} on http://127.0.0.1:${ports.s3} (access key ${maskSecret(creds.accessKey)})`);
    }
    if (needLocal) writeFileSync(paths.state, `${JSON.stringify(state, null, 2)}\n`);

    // Tie before waiting, so a caller killed during the health checks still takes its servers along.
    let watchdog = now.watchdog;
    if (options.tieToPid !== undefined && started.length > 0) {
      watchdog = spawnWatchdog(paths, options.tieToPid, started);
      log(`watchdog: pid ${watchdog} stops the servers when pid ${options.tieToPid} exits`);
    }

    const pids = { temporal: now.temporal ?? pidOf(started, 'temporal'), weed: now.weed ?? pidOf(started, 'weed') };
    const info = buildInfo(r, needLocal ? state : undefined, { ...pids, watchdog }, creds, started.length > 0);
    const exited = (name: 'temporal' | 'weed') => () => {
      const pid = pids[name];
      if (pid === undefined || isAlive(pid)) return undefined;
      return `process ${pid} exited`;
    };
    await Promise.all([
      waitUntil(() => checkTemporal(info.temporal.address, info.temporal.namespace), {
        timeoutMs: r.externalTemporal ? Math.min(timeoutMs, 15_000) : timeoutMs,
        abort: r.externalTemporal ? undefined : exited('temporal'),
      }).catch((err: Error) => {
        throw new Error(
          r.externalTemporal
            ? `Temporal at TEMPORAL_ADDRESS=${info.temporal.address} does not answer: ${err.message}`
            : `Temporal dev server did not come up on 127.0.0.1:${ports.temporal} (namespace ${r.namespace}): ` +
                `${err.message}; log: ${paths.temporalLog}\n${tail(paths.temporalLog)}`,
        );
      }),
      waitUntil(() => checkS3(info.s3), {
        timeoutMs: r.externalS3 ? Math.min(timeoutMs, 15_000) : timeoutMs,
        abort: r.externalS3 ? undefined : exited('weed'),
        // A server we did not start here and that refuses our keys will not change its mind.
        permanent: r.externalS3 || !wantWeed ? isCredentialError : undefined,
      }).catch((err: Error) => {
        throw new Error(
          r.externalS3
            ? `S3 store at S3_ENDPOINT=${info.s3.url} does not answer (access key ${maskSecret(info.s3.accessKey)}): ${err.message}`
            : !wantWeed && err.message.startsWith('refused')
              ? `the running SeaweedFS on 127.0.0.1:${ports.s3} refuses access key ${maskSecret(info.s3.accessKey)} ` +
                `(were S3_ACCESS_KEY/S3_SECRET_KEY changed since it started? run tempered down, then up): ${err.message}`
              : `SeaweedFS S3 gateway did not come up on 127.0.0.1:${ports.s3}: ${err.message}; log: ${paths.weedLog}\n${tail(paths.weedLog)}`,
        );
      }),
    ]);
    if (!r.externalTemporal) {
      for (const file of [paths.temporalDb, `${paths.temporalDb}-wal`, `${paths.temporalDb}-shm`]) {
        if (existsSync(file)) chmodSync(file, 0o600);
      }
    }
    return info;
  } catch (err) {
    // Leave nothing half-started behind.
    for (const s of started) {
      await stopPid(s.pid, 5_000);
      removePidFile(s.name === 'temporal' ? paths.temporalPid : paths.weedPid, s.pid);
    }
    throw err;
  } finally {
    release();
  }
}

const pidOf = (started: { name: string; pid: number }[], name: string) => started.find((s) => s.name === name)?.pid;

function spawnWatchdog(paths: StackPaths, tiePid: number, servers: { name: 'temporal' | 'weed'; pid: number }[]) {
  const m = markers(paths);
  const previous = readPid(paths.watchdogPid);
  const config = {
    tiePid,
    tieStart: startTime(tiePid),
    watchdogPidFile: paths.watchdogPid,
    servers: servers.map((s) => ({
      name: s.name,
      pid: s.pid,
      marker: m[s.name],
      pidFile: s.name === 'temporal' ? paths.temporalPid : paths.weedPid,
    })),
  };
  const fd = openSync(paths.watchdogLog, 'a');
  try {
    const child = spawn(process.execPath, [WATCHDOG, JSON.stringify(config), paths.watchdogPid], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: serverEnv(),
    });
    if (child.pid === undefined) throw new Error(`could not start the watchdog (${WATCHDOG})`);
    child.on('error', () => {});
    child.unref();
    // One stack, one watchdog file: a second tie (e.g. weed restarted alone) leaves the first watchdog on its own.
    if (previous === undefined || !isAlive(previous)) writePid(paths.watchdogPid, child.pid);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * Ties a process group (a child spawned with `detached: true`, whose pid is its group id) to `tiePid`: when
 * that process disappears, even by SIGKILL, the group gets SIGTERM, then SIGKILL after 10 s. The watchdog
 * exits by itself once the group is gone. Returns the watchdog's pid; its lines go to `logFile`.
 */
export function tieProcessGroup(pgid: number, tiePid: number, logFile: string, name = 'group'): number {
  const config = { tiePid, tieStart: startTime(tiePid), servers: [], groups: [{ name, pgid }] };
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, [WATCHDOG, JSON.stringify(config)], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: serverEnv(),
    });
    if (child.pid === undefined) throw new Error(`could not start the watchdog (${WATCHDOG})`);
    child.on('error', () => {});
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Env vars handing the stack to a child process: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, S3_ENDPOINT, keys, region. */
export function stackEnv(info: StackInfo): Record<string, string> {
  // The UI's URL too, so links printed by child processes (CLI, tests) point at this stack's UI port.
  return { ...connectionEnv(info), ...(info.temporal.uiUrl ? { TEMPORAL_UI_URL: info.temporal.uiUrl } : {}) };
}

export interface StopResult {
  name: 'watchdog' | 'temporal' | 'weed';
  pid: number;
  signal?: 'SIGTERM' | 'SIGKILL';
}

/**
 * Stops the servers recorded under `home`, by PID only: the watchdog first, then SIGTERM to each server,
 * SIGKILL after `graceMs`. Removes the PID files. External servers are left alone. Stopping a stopped stack
 * succeeds with an empty list.
 */
export async function down(options: StackOptions & { graceMs?: number } = {}): Promise<StopResult[]> {
  const { paths, log } = resolveOptions(options);
  if (!existsSync(paths.run)) return [];
  const release = await acquireLock(paths.lock);
  try {
    const now = running(paths);
    const result: StopResult[] = [];
    if (now.watchdog !== undefined) {
      result.push({ name: 'watchdog', pid: now.watchdog, signal: await stopPid(now.watchdog, 2_000) });
    }
    const servers = [
      { name: 'temporal' as const, pid: now.temporal },
      { name: 'weed' as const, pid: now.weed },
    ].filter((s): s is { name: 'temporal' | 'weed'; pid: number } => s.pid !== undefined);
    for (const s of servers) log(`${s.name}: stopping pid ${s.pid}`);
    const signals = await Promise.all(servers.map((s) => stopPid(s.pid, options.graceMs ?? 10_000)));
    servers.forEach((s, i) => result.push({ ...s, signal: signals[i] }));
    for (const file of [paths.watchdogPid, paths.temporalPid, paths.weedPid]) rmSync(file, { force: true });
    if (now.weed !== undefined) {
      for (const sock of ['weed-s3.sock', 'weed-filer.sock']) rmSync(join(paths.run, sock), { force: true });
    }
    return result;
  } finally {
    release();
  }
}

export interface ServerStatus {
  up: boolean;
  /** True when it answered a real call just now (DescribeNamespace / ListBuckets). */
  answers: boolean;
  external: boolean;
  pid?: number;
  ports?: Partial<StackPorts>;
  log?: string;
  error?: string;
}

export interface StackStatus {
  home: string;
  temporal: ServerStatus & { address?: string; namespace: string; uiUrl?: string };
  s3: ServerStatus & { url?: string; accessKey?: string };
  watchdogPid?: number;
  logs: string;
}

/** Each server up or down, with pid, ports, addresses and whether it answers a real call (2 s deadline). */
export async function status(options: StackOptions = {}): Promise<StackStatus> {
  const r = resolveOptions(options);
  const { paths } = r;
  const state = readState(paths);
  const now = running(paths);
  const ports = state?.ports;
  const creds = r.externalS3 ? credentialsFromEnv(r.env) : s3Credentials(r, false);
  const pick = (names: (keyof StackPorts)[]) =>
    ports ? Object.fromEntries(names.map((n) => [n, ports[n]])) : undefined;

  const address = r.externalTemporal ?? (ports ? `127.0.0.1:${ports.temporal}` : undefined);
  const url = r.externalS3 ?? (ports ? `http://127.0.0.1:${ports.s3}` : undefined);
  const probe = async (fn: () => Promise<void>) => {
    try {
      await fn();
      return { answers: true };
    } catch (err) {
      return { answers: false, error: (err as Error).message.split('\n')[0] };
    }
  };
  const [t, s] = await Promise.all([
    address && (r.externalTemporal || now.temporal)
      ? probe(() => checkTemporal(address, r.namespace, 2_000))
      : { answers: false },
    url && creds && (r.externalS3 || now.weed)
      ? probe(() => checkS3({ ...parseS3Endpoint(url), ...creds, region: r.region }))
      : { answers: false },
  ]);
  return {
    home: paths.home,
    temporal: {
      up: r.externalTemporal ? t.answers : now.temporal !== undefined,
      external: Boolean(r.externalTemporal),
      pid: now.temporal,
      address,
      namespace: r.namespace,
      uiUrl: !r.externalTemporal && ports ? `http://127.0.0.1:${ports.temporalUi}` : undefined,
      ports: r.externalTemporal ? undefined : pick(TEMPORAL_PORTS),
      log: r.externalTemporal ? undefined : paths.temporalLog,
      ...t,
    },
    s3: {
      up: r.externalS3 ? s.answers : now.weed !== undefined,
      external: Boolean(r.externalS3),
      pid: now.weed,
      url,
      accessKey: creds ? maskSecret(creds.accessKey) : undefined,
      ports: r.externalS3 ? undefined : pick(WEED_PORTS),
      log: r.externalS3 ? undefined : paths.weedLog,
      ...s,
    },
    watchdogPid: now.watchdog,
    logs: paths.logs,
  };
}

/** A full set of ports the OS reports free right now (for tests and parallel stacks). */
export async function pickFreePorts(): Promise<StackPorts> {
  const ports = await freePorts(PORT_NAMES.length);
  return Object.fromEntries(PORT_NAMES.map((n, i) => [n, ports[i]])) as unknown as StackPorts;
}
