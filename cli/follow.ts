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
  /** Draws each progress line instead of the default (see {@link progressPrinter}). */
  draw?: (line: string, stage: string) => void;
  intervalMs?: number;
  batchSize?: number;
}

export interface ProgressPrinterOptions {
  /** Default process.stderr.write. */
  write?: (text: string) => void;
  /** Redraw one line in place. Default: whether stderr is a terminal. */
  tty?: boolean;
  /** Terminal width. Default stderr's columns, else 120. */
  columns?: number;
  /**
   * Without a TTY, at most one line per this many ms unless the stage changes. Default 30 000: the demo's log of
   * about ten minutes then fits on a screen above its result table.
   */
  everyMs?: number;
  /** Default Date.now. */
  now?: () => number;
}

/**
 * How progress reaches a person: on a TTY one line redrawn in place; otherwise (a log file, CI) a line when the
 * stage changes and at most one every 30 s in between. `end()` finishes the redrawn line.
 */
export function progressPrinter(options: ProgressPrinterOptions = {}) {
  const {
    write = (text: string) => void process.stderr.write(text),
    tty = process.stderr.isTTY === true,
    columns = process.stderr.columns ?? 120,
    everyMs = 30_000,
    now = Date.now,
  } = options;
  let lastStage: string | undefined;
  let lastLine = '';
  let lastAt = -Infinity;
  return {
    draw(line: string, stage: string) {
      if (tty) write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
      else if (stage !== lastStage || (line !== lastLine && now() - lastAt >= everyMs)) {
        write(`${line}\n`);
        lastAt = now();
      }
      lastStage = stage;
      lastLine = line;
    },
    end() {
      if (tty && lastLine) write('\n');
    },
  };
}

/** Polls the progress query until the run ends; returns its summary, or the failure. */
export async function followRun(
  run: HardeningRunHandle,
  options: FollowOptions = {},
): Promise<{ summary?: RunSummary; error?: Error }> {
  const { intervalMs = 1000, batchSize } = options;
  const printer = progressPrinter();
  const draw = options.draw ?? printer.draw;
  let done = false;
  const outcome = run.result().then(
    (summary) => ({ summary }),
    (error: Error) => ({ error }),
  );
  void outcome.then(() => (done = true));
  while (!done) {
    try {
      const progress = await run.liveProgress();
      draw(formatProgressLine(progress, { batchSize }), progress.stage);
    } catch {
      // No worker has picked the workflow up yet, or it just ended: keep waiting on the result.
      draw('waiting for a worker', 'waiting');
    }
    await Promise.race([outcome, new Promise((r) => setTimeout(r, intervalMs))]);
  }
  if (!options.draw) printer.end();
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
  if (options.json) printJson({ link, ...summary });
  else print(formatResultTable(summary, { workflowId: run.workflowId, link }));
  return exitCodeFor(summary.status);
}
