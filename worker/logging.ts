// Where the Temporal SDK's own log lines go (its INFO lines, the workflow bundler's webpack statistics): a file
// under the home's logs/ for the CLI's worker and demo, so their output is tempered's progress and nothing else.
// `--verbose` keeps the SDK's default (stderr).
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { inspect } from 'node:util';
import { DefaultLogger } from '@temporalio/worker';
import type { Logger } from '@temporalio/worker';

/** A logger that appends one line per entry to `file` (folders created). */
export function fileLogger(file: string): Logger {
  mkdirSync(dirname(file), { recursive: true });
  return new DefaultLogger('INFO', ({ level, message, meta, timestampNanos }) => {
    const at = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
    const rest = meta === undefined ? '' : ` ${inspect(meta, { breakLength: Infinity, depth: 4 })}`;
    appendFileSync(file, `${at} [${level}] ${message}${rest}\n`);
  });
}
