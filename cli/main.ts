// `tempered <command> [...]`: a thin dispatcher. Each command lives in its own module, loaded on demand so
// `tempered status` does not pay for tfjs. A command parses its own flags (node:util parseArgs) and supports
// `--help`; it returns an exit code (or sets process.exitCode) rather than calling process.exit.
import { pathToFileURL } from 'node:url';

export interface Command {
  /** One line for `tempered --help`. */
  summary: string;
  /** Runs with the arguments after the command name; returns the exit code (default 0). */
  run(argv: string[]): Promise<number | void>;
}

/** Command name → loader. Add a command here with one line. */
export const commands: Record<string, () => Promise<Command>> = {
  up: async () => (await import('./stack')).upCommand,
  down: async () => (await import('./stack')).downCommand,
  status: async () => (await import('./stack')).statusCommand,
  worker: async () => (await import('./worker')).workerCommand,
  demo: async () => (await import('./demo')).demoCommand,
  validate: async () => (await import('./validate')).validateCommand,
  run: async () => (await import('./run')).runCommand,
  runs: async () => (await import('./runs')).runsCommand,
  show: async () => (await import('./show')).showCommand,
  cancel: async () => (await import('./signal')).cancelCommand,
  approve: async () => (await import('./signal')).approveCommand,
  reject: async () => (await import('./signal')).rejectCommand,
  schedule: async () => (await import('./schedule')).scheduleCommand,
  serve: async () => (await import('./serve')).serveCommand,
  resume: async () => (await import('./resume')).resumeCommand,
};

/** Thrown by commands for bad usage: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function topHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'Usage: tempered <command> [options]',
    '',
    'Commands:',
    ...Object.keys(commands).map((c) => `  ${c.padEnd(width)}  ${summaries[c] ?? ''}`),
    '',
    'Run `tempered <command> --help` for the options of one command.',
  ].join('\n');
}

/** Kept here so `tempered --help` needs no command module loaded. */
const summaries: Record<string, string> = {
  up: 'start the local stack (Temporal dev server + SeaweedFS S3) or show the running one',
  down: 'stop the local stack started by `tempered up`',
  status: 'show whether each server of the local stack is up and answering',
  worker: 'run a worker for the io and heavy task queues',
  demo: 'harden the reference CNN on Fashion-MNIST end to end on the local stack (the README demo)',
  validate: 'check a spec file and list every problem (exit 2 when invalid)',
  run: 'start a hardening run from a spec; --wait follows it to the result',
  runs: 'list recent hardening runs',
  show: 'show one run: progress while it runs, the result when it ended',
  cancel: 'stop a run gracefully (last checkpoint kept, nothing promoted)',
  approve: 'approve a run waiting for approval (--by NAME)',
  reject: 'reject a run waiting for approval (--by NAME)',
  schedule: 'nightly re-hardening: schedule create|list|delete|trigger',
  serve: 'serve the production model over HTTP (POST /predict, /healthz, /metrics)',
};

/** Runs one command line; resolves to the exit code. Never exits the process itself. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${topHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`tempered: unknown command ${JSON.stringify(name)}; run tempered --help\n`);
    return 2;
  }
  try {
    const command = await load();
    const code = await command.run(rest);
    return typeof code === 'number' ? code : typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`tempered ${name}: ${message.split('\n')[0]}\n`);
    if (process.env.TEMPERED_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return usage ? 2 : 1;
  }
}

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
const viaBin = process.argv[1]?.endsWith('/bin/tempered.js') || process.argv[1]?.endsWith('/bin/tempered');
// No top-level await: command modules import this one (Command, UsageError), which would deadlock.
if (isEntry || viaBin) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
