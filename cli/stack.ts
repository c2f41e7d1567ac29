// `tempered up|down|status`: gather flags, call infra/stack, print. Secrets are always masked.
import { stackPaths } from '../infra/config';
import type { StackInfo, StackStatus, StopResult } from '../infra/stack';
import { maskSecret } from '../storage/connection';
import { UsageError, defineCommand } from './command';

const common = { home: { type: 'string' } } as const;

const HOME_HELP = '  --home <dir>     stack folder (default TEMPERED_HOME or <repo>/.tempered)';

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The info with the secret key masked: what `up --json` prints. */
export function publicInfo(info: StackInfo): StackInfo & { credentialsFile?: string } {
  return {
    ...info,
    s3: { ...info.s3, secretKey: maskSecret(info.s3.secretKey) },
    credentialsFile: info.s3.external ? undefined : stackPaths(info.home).credentials,
  };
}

/** Human-readable summary of a running stack. */
export function formatInfo(info: StackInfo): string {
  const t = info.temporal;
  const s = info.s3;
  const pid = (p?: number) => (p === undefined ? 'external' : `pid ${p}`);
  return [
    `Temporal  ${t.address}  namespace ${t.namespace}  ${pid(t.pid)}${t.uiUrl ? `  UI ${t.uiUrl}` : ''}`,
    `S3        ${s.url}  access key ${maskSecret(s.accessKey)}  ${pid(s.pid)}`,
    `home      ${info.home}`,
    `logs      ${info.logs}`,
    info.startedHere ? 'started; stop with `tempered down`' : 'already running',
  ].join('\n');
}

export const upCommand = defineCommand({
  name: 'up',
  summary: 'start the local stack (Temporal dev server + SeaweedFS S3) or show the running one',
  usage: 'tempered up [--json] [--home <dir>] [--timeout <seconds>]',
  help: [
    '',
    'Starts the Temporal dev server and SeaweedFS (S3) on loopback and leaves them running until',
    '`tempered down`. On a running stack, prints its details. Servers named by TEMPORAL_ADDRESS or',
    'S3_ENDPOINT are only checked, not started. Ports: TEMPERED_TEMPORAL_PORT (17233), TEMPERED_S3_PORT',
    '(18333), ... ; binaries: TEMPORAL_CLI, WEED_BIN.',
    '',
    '  --json           print the stack as JSON (secret key masked)',
    HOME_HELP,
    '  --timeout <s>    health-check deadline per server (default 90)',
  ],
  json: true,
  options: { ...common, timeout: { type: 'string' } },
  async run({ values, json }) {
    let timeoutMs: number | undefined;
    if (values.timeout !== undefined) {
      const seconds = Number(values.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0) {
        throw new UsageError(`--timeout: expected a positive number of seconds, got ${JSON.stringify(values.timeout)}`);
      }
      timeoutMs = seconds * 1000;
    }
    const { up } = await import('../infra/stack');
    const info = await up({ home: values.home, timeoutMs, log: json ? undefined : log });
    print(json ? JSON.stringify(publicInfo(info), null, 2) : formatInfo(info));
    return 0;
  },
});

export const downCommand = defineCommand({
  name: 'down',
  summary: 'stop the local stack started by `tempered up`',
  usage: 'tempered down [--json] [--home <dir>]',
  help: [
    '',
    'Stops the servers `tempered up` started (by their recorded PIDs: SIGTERM, then SIGKILL after 10 s).',
    'A stack that is not running is not an error.',
    '',
    '  --json           print what was stopped as JSON',
    HOME_HELP,
  ],
  json: true,
  options: common,
  async run({ values, json }) {
    const { down } = await import('../infra/stack');
    const stopped: StopResult[] = await down({ home: values.home });
    if (json) print(JSON.stringify({ stopped }, null, 2));
    else if (stopped.length === 0) print('nothing running');
    else for (const s of stopped) print(`stopped ${s.name} (pid ${s.pid}${s.signal ? `, ${s.signal}` : ''})`);
    return 0;
  },
});

/** Human-readable status lines. */
export function formatStatus(s: StackStatus): string {
  const state = (x: { up: boolean; answers: boolean; external: boolean; pid?: number; error?: string }) =>
    `${x.answers ? 'up' : x.up ? 'up, not answering' : 'down'}${x.pid ? `  pid ${x.pid}` : ''}${x.external ? '  external' : ''}`;
  const ports = (p?: object) =>
    p
      ? `  ports ${Object.entries(p)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`
      : '';
  return [
    `Temporal  ${state(s.temporal)}  ${s.temporal.address ?? '-'}${s.temporal.uiUrl ? `  UI ${s.temporal.uiUrl}` : ''}${ports(s.temporal.ports)}`,
    `S3        ${state(s.s3)}  ${s.s3.url ?? '-'}${s.s3.accessKey ? `  access key ${s.s3.accessKey}` : ''}${ports(s.s3.ports)}`,
    ...(s.watchdogPid ? [`watchdog  pid ${s.watchdogPid}`] : []),
    `home      ${s.home}`,
    `logs      ${s.logs}`,
  ].join('\n');
}

export const statusCommand = defineCommand({
  name: 'status',
  summary: 'show whether each server of the local stack is up and answering',
  usage: 'tempered status [--json] [--home <dir>]',
  help: [
    '',
    'Shows each server up or down, its pid, ports and UI URL, and whether it answers a real call.',
    'Exits 0 when both servers answer, 1 otherwise.',
    '',
    '  --json           print the status as JSON',
    HOME_HELP,
  ],
  json: true,
  options: common,
  async run({ values, json }) {
    const { status } = await import('../infra/stack');
    const s = await status({ home: values.home });
    print(json ? JSON.stringify(s, null, 2) : formatStatus(s));
    return s.temporal.answers && s.s3.answers ? 0 : 1;
  },
});
