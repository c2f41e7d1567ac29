import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import type { S3Connection } from '../storage/connection';
import { createObjectStore } from '../storage/object-store';

/** One real gRPC call: DescribeNamespace. Throws what the server or the network said. */
export async function checkTemporal(address: string, namespace: string, timeoutMs = 3_000): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection.workflowService.describeNamespace({ namespace }),
    );
  } finally {
    await connection.close();
  }
}

/** One real signed S3 call: ListBuckets. Wrong keys fail here. */
export async function checkS3(conn: S3Connection): Promise<void> {
  const store = createObjectStore(conn);
  await store.client.listBuckets();
}

export interface WaitOptions {
  /** Overall deadline in ms. */
  timeoutMs: number;
  /** Stops waiting early (e.g. the server process exited); return a reason to fail with. */
  abort?: () => string | undefined;
  /** Errors not worth retrying (e.g. refused credentials on an external store): fail at once. */
  permanent?: (err: unknown) => boolean;
}

/** S3 answers that no amount of waiting fixes. */
export function isCredentialError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && ['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AccessDenied'].includes(code);
}

/** Retries `check` until it passes or the deadline passes; the error carries the last failure. */
export async function waitUntil(check: () => Promise<void>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown;
  for (;;) {
    const aborted = options.abort?.();
    if (aborted) throw new Error(aborted);
    try {
      await check();
      return;
    } catch (err) {
      last = err;
      if (options.permanent?.(err)) {
        throw new Error(`refused: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }
    if (Date.now() > deadline) {
      const reason = last instanceof Error ? last.message.split('\n')[0] : String(last);
      throw new Error(`no answer within ${Math.round(options.timeoutMs / 1000)} s (last error: ${reason})`);
    }
    await sleep(250);
  }
}
