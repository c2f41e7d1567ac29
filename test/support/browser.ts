// A real headless browser for integration tests that drive a web page (the Temporal Web UI): Debian's chromium
// through playwright-core, with a throwaway profile, and helpers that turn a failed step into a message with a
// screenshot path.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { readState, stackPaths } from '../../infra/config';
import { stackHome } from './stack';

/** Debian's chromium package; playwright-core downloads no browser of its own. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Headless, offline-friendly: no sandbox (containers), no GPU, no QUIC, no first-run or background traffic. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why browser tests cannot run here (the `skip` message), or undefined when they can. */
export function browserUnavailable(executablePath: string = CHROMIUM_PATH): string | undefined {
  return existsSync(executablePath)
    ? undefined
    : `no chromium at ${executablePath}: install Debian's chromium package to run the Web UI tests`;
}

export interface LaunchOptions {
  /** The chromium binary. Default CHROMIUM_PATH. */
  executablePath?: string;
  /** Window size; default 1400×1000, wide enough for the Web UI's forms without a collapsed menu. */
  viewport?: { width: number; height: number };
  /** Default timeout of every page action and wait, in ms. Default 20 000. */
  timeoutMs?: number;
}

export interface HeadlessBrowser {
  context: BrowserContext;
  page: Page;
  /** Closes the browser and removes its temporary profile. */
  close(): Promise<void>;
}

/** Launches headless chromium with a fresh profile in a temporary folder and opens one page. */
export async function launchBrowser(options: LaunchOptions = {}): Promise<HeadlessBrowser> {
  const { executablePath = CHROMIUM_PATH, viewport = { width: 1400, height: 1000 }, timeoutMs = 20_000 } = options;
  const missing = browserUnavailable(executablePath);
  if (missing) throw new Error(missing);
  const profile = await mkdtemp(join(tmpdir(), 'tempered-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`chromium (${executablePath}) did not start: ${(err as Error).message}`);
  }
  context.setDefaultTimeout(timeoutMs);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** The Temporal Web UI of the stack test/run.ts started (`ports.temporalUi` in `<home>/run/stack.json`), on 127.0.0.1. */
export function stackUiUrl(env: NodeJS.ProcessEnv = process.env): string {
  const paths = stackPaths(stackHome(env));
  const state = readState(paths);
  if (!state) throw new Error(`no stack state in ${paths.state}: is the runner's stack up?`);
  return `http://127.0.0.1:${state.ports.temporalUi}`;
}

/** Numbered screenshots into one folder, so a failure message can name the picture of the page it failed on. */
export class Screenshots {
  private count = 0;
  readonly taken: string[] = [];
  constructor(readonly dir: string) {}

  /** Full-page PNG `NN-<name>.png`; returns its path. */
  async take(page: Page, name: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${String(++this.count).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    this.taken.push(path);
    return path;
  }

  /**
   * Runs one step of a page script; when it throws, takes a screenshot and rethrows an error naming the step,
   * the page's URL, the cause and the screenshot.
   */
  async step<T>(page: Page, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const shot = await this.take(page, `failed-${what.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`).catch(
        (e: Error) => `(no screenshot: ${e.message})`,
      );
      throw new Error(`${what} failed on ${page.url()}: ${(err as Error).message}\nscreenshot: ${shot}`, {
        cause: err,
      });
    }
  }
}
