// Following a run to its end: the progress line on stderr while it runs, then the result table (or JSON) and the
// exit code. Used by `tempered run --wait` and `tempered demo`. Loads the Temporal client: import it inside run.
import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { HardeningRunHandle } from '../client/index';
import type { RunSummary } from '../schemas/payloads';
import { runLink } from './client-session';
import { log, print, printJson } from './common';
import { EXIT, exitCodeFor, formatProgressLine, formatResultTable } from './format';

export interface FollowOptions {
  /** Draws each progress line (default: rewrites one stderr line on a TTY, else prints changed lines). */
  draw?: (line: string) => void;
  intervalMs?: number;
  batchSize?: number;
}

/** Polls the progress query until the run ends; returns its summary, or the failure. */
export async function followRun(
  run: HardeningRunHandle,
  options: FollowOptions = {},
): Promise<{ summary?: RunSummary; error?: Error }> {
  const { intervalMs = 1000, batchSize } = options;
  const tty = process.stderr.isTTY;
  let last = '';
  const draw =
    options.draw ??
    ((line: string) => {
      if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
      else if (line !== last) process.stderr.write(`${line}\n`);
      last = line;
    });
  let done = false;
  const outcome = run.result().then(
    (summary) => ({ summary }),
    (error: Error) => ({ error }),
  );
  void outcome.then(() => (done = true));
  while (!done) {
    try {
      draw(formatProgressLine(await run.progress(), { batchSize }));
    } catch {
      // No worker has picked the workflow up yet, or it just ended: keep waiting on the result.
      draw('waiting for a worker');
    }
    await Promise.race([outcome, new Promise((r) => setTimeout(r, intervalMs))]);
  }
  if (tty && !options.draw) process.stderr.write('\n');
  return outcome;
}

/**
 * A failed run's reason: an activity that failed for good ends the run as "Activity task failed", and its
 * cause holds the type and the message a person needs. Returns the error with the innermost typed cause lifted
 * to the top (the workflow's own typed failures are kept as they are).
 */
export function innermostTyped(err: Error): Error {
  if (!(err instanceof WorkflowFailedError)) return err;
  let cause = err.cause as (Error & { type?: string; activityType?: string }) | undefined;
  let activity: string | undefined;
  while (cause && !cause.type && cause.cause instanceof Error) {
    activity = cause.activityType ?? activity;
    cause = cause.cause as Error & { type?: string };
  }
  if (!cause || cause === err.cause) return err;
  const lifted = Object.assign(new Error(activity ? `${activity}: ${cause.message}` : cause.message), {
    type: cause.type,
  });
  return new WorkflowFailedError(err.message, lifted, err.retryState);
}

/** The one-line reason a workflow failed: its (innermost typed) cause's type and message. */
export function failureLine(failure: Error): string {
  const err = innermostTyped(failure);
  if (err instanceof WorkflowFailedError) {
    const cause = err.cause as (Error & { type?: string }) | undefined;
    return `run failed${cause?.type ? ` (${cause.type})` : ''}: ${cause?.message ?? err.message}`;
  }
  return err.message;
}

/** Waits for `run` and prints the result table (or JSON). Returns the exit code. */
export async function finishRun(
  client: Client,
  run: HardeningRunHandle,
  options: { json: boolean; batchSize?: number; intervalMs?: number },
): Promise<number> {
  const { summary, error } = await followRun(run, { batchSize: options.batchSize, intervalMs: options.intervalMs });
  const link = runLink(client, run.workflowId);
  if (error || !summary) {
    const line = failureLine(error ?? new Error('no result'));
    if (options.json) printJson({ workflowId: run.workflowId, status: 'failed', error: line, link });
    else log(`${line}\n${link}`);
    return EXIT.failed;
  }
  if (options.json) printJson({ workflowId: run.workflowId, link, ...summary });
  else print(formatResultTable(summary, { workflowId: run.workflowId, link }));
  return exitCodeFor(summary.status);
}
