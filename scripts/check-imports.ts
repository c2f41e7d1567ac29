// `npm run lint` (after eslint): the folder rules of docs/architecture.md and "no import circle", checked on the
// source as it is. eslint's no-restricted-imports covers single files; a circle needs the whole graph, so it lives
// here. Exit 1 with one line per problem.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', '.venv', '.tempered', '.git', 'coverage', 'dist', 'tmp']);

export interface ImportEdge {
  from: string;
  /** Repo-relative file for a local import, the bare specifier otherwise. */
  to: string;
  typeOnly: boolean;
  line: number;
}

/** Every `.ts` file under the repo root, repo-relative, sorted. */
export function sourceFiles(root = ROOT): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (SKIP.has(entry.name)) continue;
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
        out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

const STATIC = /^\s*(import|export)\s+(type\s+)?([^'";]*?\bfrom\s+)?['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Resolves a relative specifier the way tsx and the workflow bundler do (extensionless, or index.ts). */
function resolveLocal(from: string, spec: string, root: string): string {
  const base = join(dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
    try {
      if (statSync(join(root, candidate)).isFile()) return candidate;
    } catch {
      // try the next form
    }
  }
  return base;
}

/** The imports of one file: static (value or type-only) and dynamic `import()`. */
export function importsOf(file: string, text: string, root = ROOT): ImportEdge[] {
  const edges: ImportEdge[] = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  const add = (spec: string, typeOnly: boolean, index: number) =>
    edges.push({
      from: file,
      to: spec.startsWith('.') ? resolveLocal(file, spec, root) : spec,
      typeOnly,
      line: lineOf(index),
    });
  for (const m of text.matchAll(STATIC)) {
    // `import { type A, type B } from` is type-only too.
    const named = m[3] ?? '';
    const allTypes = /^\{\s*(type\s+[\w$]+(\s+as\s+[\w$]+)?\s*,?\s*)+\}\s*from\s+$/.test(named.trim() + ' ');
    add(m[4], Boolean(m[2]) || allTypes, m.index);
  }
  for (const m of text.matchAll(DYNAMIC)) add(m[1], false, m.index);
  return edges;
}

/** A rule of the architecture table: files under `folder` may not import what `forbid` matches. */
interface FolderRule {
  folder: string;
  except?: string[];
  forbid: { pattern: RegExp; why: string; allowTypeOnly?: boolean }[];
}

const local = (folder: string) => new RegExp(`^${folder.replace('/', '\\/')}`);

/** The "may import" column of docs/architecture.md, as forbidden imports. Keep the two in step. */
export const RULES: FolderRule[] = [
  {
    folder: 'tensor/',
    forbid: [
      { pattern: /^@temporalio\//, why: 'the tensor core knows nothing of Temporal' },
      { pattern: /^minio$/, why: 'the tensor core does no object-store I/O' },
      { pattern: local('schemas/'), why: 'the spec is mapped to core configs in activities/, not read by the core' },
      { pattern: /^(activities|storage|workflows|worker|cli|client|infra|serve|metrics)\//, why: 'layer above' },
    ],
  },
  {
    folder: 'schemas/',
    except: ['schemas/load.ts'],
    forbid: [
      {
        pattern: /^(?!zod$|@temporalio\/common$|schemas\/)/,
        why: 'schemas are workflow-safe: zod and @temporalio/common only',
      },
    ],
  },
  {
    folder: 'workflows/',
    forbid: [
      {
        pattern: /^(?!@temporalio\/(workflow|common)$|schemas\/|workflows\/)/,
        why: 'workflows import @temporalio/workflow, schemas/ and activity types only',
        allowTypeOnly: true,
      },
      { pattern: /^schemas\/load(\.ts)?$/, why: 'file loading is not workflow-safe' },
    ],
  },
  {
    folder: 'client/',
    forbid: [{ pattern: /^infra\/stack(\.ts)?$/, why: 'the client SDK does not start or stop the local stack' }],
  },
  {
    folder: 'storage/',
    forbid: [{ pattern: /^(@tensorflow\/|@temporalio\/)/, why: 'the store adapter is plain S3' }],
  },
];

export function ruleViolations(edges: ImportEdge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    for (const rule of RULES) {
      if (!e.from.startsWith(rule.folder) || rule.except?.includes(e.from)) continue;
      const target = e.to.replace(/\.ts$/, '');
      for (const f of rule.forbid) {
        if (f.allowTypeOnly && e.typeOnly) continue;
        if (f.pattern.test(target) || f.pattern.test(e.to)) out.push(`${e.from}:${e.line}: imports ${e.to}: ${f.why}`);
      }
    }
  }
  return out;
}

/** Every import circle among local files (type-only imports excluded: they vanish at run time). */
export function cycles(edges: ImportEdge[]): string[][] {
  const graph = new Map<string, string[]>();
  for (const e of edges) {
    if (e.typeOnly || !e.to.endsWith('.ts')) continue;
    graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
  }
  // Tarjan's strongly connected components: each component of more than one file (or a self-import) is a circle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

export function checkImports(root = ROOT): string[] {
  const edges = sourceFiles(root).flatMap((f) => importsOf(f, readFileSync(join(root, f), 'utf8'), root));
  return [
    ...ruleViolations(edges),
    ...cycles(edges).map((c) => `import circle of ${c.length} files: ${c.join(' → ')}`),
  ];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = checkImports();
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) {
    process.stderr.write(`check-imports: ${problems.length} problem(s); the rules are in docs/architecture.md\n`);
    process.exitCode = 1;
  } else process.stdout.write('check-imports: folder rules hold, no import circle\n');
}
