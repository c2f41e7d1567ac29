// The client side of the run commands: a connected client that is always closed, and a run's Web UI link.
// Imported inside a command's run (it loads the Temporal client), never at a command module's top level.
import type { Client, Connection } from '@temporalio/client';
import { connectClient, temporalUiUrl, workflowUiLink } from '../client/index';

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
