// Helpers for integration tests: the stack that test/run.ts started, handed over through the environment.
import { randomBytes } from 'node:crypto';
import type { Connections } from '../../infra/config';
import { resolveConnections } from '../../infra/config';
import type { ObjectStore } from '../../storage/object-store';
import { createObjectStore } from '../../storage/object-store';

const RUN_HINT =
  'integration tests need the stack that test/run.ts starts: run `npm test` or `npx tsx test/run.ts --integration`';

/** Connections from TEMPORAL_ADDRESS, S3_ENDPOINT and the S3 keys; never falls back to a local `.tempered` stack. */
export function stackFromEnv(env: NodeJS.ProcessEnv = process.env): Connections {
  for (const name of ['TEMPORAL_ADDRESS', 'S3_ENDPOINT']) {
    if (!env[name]) throw new Error(`${name} is not set: ${RUN_HINT}`);
  }
  try {
    return resolveConnections({ env, useLocalStack: false });
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${RUN_HINT}`);
  }
}

/** The temporal CLI binary (for `TestWorkflowEnvironment.createLocal` with an existing path). */
export function temporalCliPath(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.TEMPERED_TEMPORAL_CLI;
  if (!path) throw new Error(`TEMPERED_TEMPORAL_CLI is not set: ${RUN_HINT}`);
  return path;
}

/** The home folder of the runner's stack (its logs are under `<home>/logs`). */
export function stackHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.TEMPERED_STACK_HOME;
  if (!home) throw new Error(`TEMPERED_STACK_HOME is not set: ${RUN_HINT}`);
  return home;
}

/** A name no other test uses: for task queues, workflow ids, buckets and key prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** An object store on the runner's S3 server. */
export function storeFromEnv(env: NodeJS.ProcessEnv = process.env): ObjectStore {
  return createObjectStore(stackFromEnv(env).s3);
}
