// The CLI as users reach it: npm links `node_modules/.bin/tempered` to the package's `bin/tempered.js`. Tests run
// the command through such a link (made here, pointing at this checkout), so what they exercise is the path a
// user walks, not an internal entry file.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../infra/config';

let link: string | undefined;

/** `<tmp>/node_modules/.bin/tempered` → `<repo>/bin/tempered.js`, the link `npm install` makes; made once. */
export function binLink(): string {
  if (!link) {
    const bin = join(mkdtempSync(join(tmpdir(), 'tempered-bin-')), 'node_modules', '.bin');
    mkdirSync(bin, { recursive: true });
    link = join(bin, 'tempered');
    symlinkSync(join(REPO_ROOT, 'bin', 'tempered.js'), link);
  }
  return link;
}

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

export interface CliOptions {
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default the repository root. */
  cwd?: string;
  /** Killed (SIGTERM) after this many ms; default 120 000. */
  timeoutMs?: number;
  /** The executable; default {@link binLink}. */
  bin?: string;
}

/** Runs `tempered ...args` through the bin link; resolves with its exit code and output. */
export function tempered(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const { env = process.env, cwd = REPO_ROOT, timeoutMs = 120_000, bin = binLink() } = options;
  return runProcess(bin, args, { env, cwd, timeoutMs });
}

/** Runs an executable; resolves with its exit code and output (null code when a signal ended it). */
export function runProcess(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const { env = process.env, cwd = REPO_ROOT, timeoutMs = 120_000 } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      err += `\n[killed after ${timeoutMs} ms]`;
      child.kill('SIGTERM');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}
