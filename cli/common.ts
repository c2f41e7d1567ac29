// Helpers shared by the client-side commands: output, flag checks, a connected client that is always closed.
import type { Client, Connection } from '@temporalio/client';
import { connectClient, temporalUiUrl, workflowUiLink } from '../client/index';
import { readSpecFile } from '../schemas/load';
import { SpecError, parseSpec, specWarnings } from '../schemas/spec';
import type { Spec } from '../schemas/spec';
import { UsageError } from './main';

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

/** Runs `fn` with a connected client and closes the connection afterwards. */
export async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connectClient();
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

/** The run's page in the Temporal Web UI. */
export function runLink(client: Client, workflowId: string): string {
  const address = (client.connection as Connection).options.address;
  return workflowUiLink(temporalUiUrl(address), client.options.namespace, workflowId);
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
