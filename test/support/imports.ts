// A small static import walker over the repository's TypeScript/JavaScript sources (regex, no compiler): which
// repo files and which packages a file reaches through value imports (`import type` is skipped), optionally
// through dynamic `import('…')` too. Enough to check folder rules and what a module loads at its top level.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from '../../infra/config';

export interface ImportGraph {
  /** Repo files reached (paths relative to the repo root), the start included. */
  files: Set<string>;
  /** Bare specifiers reached (packages and `node:` built-ins), e.g. `@temporalio/client`. */
  packages: Set<string>;
}

const STATIC = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function resolveLocal(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, `${base}.js`, `${base}.mjs`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** What `entry` (a repo-relative path) reaches; `dynamic` follows `import('…')` as well. */
export function importGraph(entry: string, options: { dynamic?: boolean } = {}): ImportGraph {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [resolve(REPO_ROOT, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    const rel = relative(REPO_ROOT, file);
    if (files.has(rel)) continue;
    files.add(rel);
    // Type-only named imports (`import { type A, type B }`) are value-free too, but rare here; counted as values.
    const text = readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '');
    const specs = [...text.matchAll(STATIC)].map((m) => m[1]);
    if (options.dynamic) specs.push(...[...text.matchAll(DYNAMIC)].map((m) => m[1]));
    for (const spec of specs) {
      if (spec.startsWith('.')) {
        const target = resolveLocal(file, spec);
        if (!target) throw new Error(`${rel}: cannot resolve ${spec}`);
        todo.push(target);
      } else {
        const parts = spec.split('/');
        packages.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
      }
    }
  }
  return { files, packages };
}
