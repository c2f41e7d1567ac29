// Helpers shared by the commands that stay light to import: output, flag checks, spec loading. What needs the
// Temporal client lives in ./client-session (imported inside a command's run).
import { join } from 'node:path';
import { resolveHome } from '../infra/config';
import { readSpecFile } from '../schemas/load';
import { SpecError, parseSpec, specWarnings } from '../schemas/spec';
import type { Spec } from '../schemas/spec';
import { UsageError } from './command';

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** The one positional a command needs, or a UsageError naming it. */
export function positional(positionals: string[], name: string, usage: string): string {
  if (positionals.length === 0) throw new UsageError(`missing <${name}>; usage: ${usage}`);
  if (positionals.length > 1)
    throw new UsageError(`expected one <${name}>, got ${positionals.length}: ${positionals.join(' ')}`);
  return positionals[0];
}

/** A positive integer flag value. */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new UsageError(`${flag}: expected a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/**
 * Loads and validates a spec file for a command. An invalid spec prints every problem (one per line) and resolves
 * to undefined, so the command exits 2; the dispatcher would print only the first line of the error.
 */
export async function loadSpecOrReport(file: string): Promise<Spec | undefined> {
  try {
    const raw = await readSpecFile(file);
    for (const w of specWarnings(raw)) log(`${file}: warning: ${w}`);
    return parseSpec(raw, file);
  } catch (err) {
    if (err instanceof SpecError) {
      log(err.message);
      return undefined;
    }
    throw err;
  }
}

/** Where the CLI's worker and demo put the Temporal SDK's and the bundler's log lines: TEMPERED_WORKER_LOG, else
 * `<home>/logs/worker.log`. */
export function workerLogFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.TEMPERED_WORKER_LOG || join(resolveHome(env), 'logs', 'worker.log');
}
