// `tempered <command> [...]`: a thin dispatcher, called by bin/tempered.js (the only entry; nothing imports this
// file but the bin and tests). Each command is a module built with defineCommand (./command), loaded on demand;
// command modules are light at their top level, so `tempered --help` reads every summary without loading tfjs.
import { EnvError, parseEnv } from '../infra/env';
import type { Command } from './command';
import { UsageError } from './command';

/** Command name → loader. Add a command here with one line; its summary lives in the command. */
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
  doctor: async () => (await import('./doctor')).doctorCommand,
  config: async () => (await import('./config')).configCommand,
  resume: async () => (await import('./resume')).resumeCommand,
};

/** `tempered --help`: every command with its own summary. */
export async function topHelp(): Promise<string> {
  const names = Object.keys(commands);
  const loaded = await Promise.all(names.map((name) => commands[name]()));
  const width = Math.max(...names.map((c) => c.length));
  return [
    'Usage: tempered <command> [options]',
    '',
    'Commands:',
    ...loaded.map((c, i) => `  ${names[i].padEnd(width)}  ${c.summary}`),
    '',
    'Run `tempered <command> --help` for the options of one command.',
  ].join('\n');
}

/** Runs one command line; resolves to the exit code. Never exits the process itself. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${await topHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`tempered: unknown command ${JSON.stringify(name)}; run tempered --help\n`);
    return 2;
  }
  try {
    parseEnv(process.env); // every variable checked once, before any work: the error names the variable
  } catch (err) {
    if (!(err instanceof EnvError)) throw err;
    for (const line of err.problems) process.stderr.write(`tempered: ${line}\n`);
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
