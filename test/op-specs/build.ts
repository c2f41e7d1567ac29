// Runs TensorFlow.js's own op specs (tfjs-core 4.22's `*_test.js`, as published in its npm package) against a
// backend of ours. The specs import tfjs-core's ESM sources by relative path, while Node loads tfjs-core's CommonJS
// bundle for everything else: two engines, two kernel registries. So the specs, the backend packages and our
// kernels are bundled into one file that resolves tfjs-core to its ESM sources (`module` before `main`), and that
// file runs in a child Node process.
//
// `npx tsx test/op-specs/build.ts --target wasm|wasm-stock|tensorflow [--write-known]` prints a summary;
// `--write-known` records the target's failures in known-failures.json (see test/unit/tensor/backend/op-specs.test.ts
// for what each list means).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Plugin } from 'esbuild';
import type { OpSpecResult, OpSpecTarget } from './harness';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const require = createRequire(import.meta.url);
const coreDist = dirname(require.resolve('@tensorflow/tfjs-core/dist/index.js'));
const wasmDist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/index.js'));

export const OP_SPEC_TARGETS: readonly OpSpecTarget[] = ['wasm', 'wasm-stock', 'tensorflow', 'tensorflow-stock'];
export const KNOWN_FAILURES_FILE = join(here, 'known-failures.json');

/** Spec files that test something other than a backend's kernels in Node (browser storage, webgl flags). */
const NOT_FOR_NODE = /(^|\/)(io\/(browser_files|indexed_db|local_storage)|browser_util|device_util|webgl)/;

/** tfjs-core's published spec files, relative to its dist folder, sorted. */
export function specFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('_test.js')) out.push(relative(coreDist, p));
    }
  };
  walk(coreDist);
  return out.filter((f) => !NOT_FOR_NODE.test(f)).sort();
}

/**
 * Our sources read files next to themselves through `import.meta.url`; in the bundle that would be the bundle's
 * own URL, so each source file keeps its original one.
 */
const keepImportMetaUrl: Plugin = {
  name: 'keep-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes('node_modules')) return undefined;
      const text = readFileSync(args.path, 'utf8').replaceAll(
        'import.meta.url',
        JSON.stringify(pathToFileURL(args.path).href),
      );
      return { contents: text, loader: 'ts' };
    });
  },
};

/**
 * tfjs-node's CommonJS, adapted to share the bundle's tfjs-core: it finds its native addon from its own folder
 * (`__dirname`), and it is compiled to ES5, whose `_super.call(this)` cannot construct tfjs-core's ES2017
 * `KernelBackend` class (the CommonJS tfjs-core it normally loads is ES5 too).
 */
const adaptTfjsNode: Plugin = {
  name: 'adapt-tfjs-node',
  setup(b) {
    b.onLoad({ filter: /tfjs-node(-gpu)?[\\/]dist[\\/].*\.js$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8')
        .replaceAll('__dirname', JSON.stringify(dirname(args.path)))
        .replaceAll('_super.call(this) || this', 'Reflect.construct(_super, [], this.constructor)'),
      loader: 'js',
    }));
  },
};

/** Bundles the harness, the target's backend and every spec into `.tempered/op-specs/<target>.mjs`. */
export async function bundle(target: OpSpecTarget): Promise<string> {
  const outDir = join(root, '.tempered', 'op-specs');
  mkdirSync(outDir, { recursive: true });
  const entry = join(outDir, `${target}-entry.ts`);
  const harness = relative(outDir, join(here, 'harness.ts'));
  writeFileSync(
    entry,
    [
      `import { registerTarget, runSpecs } from ${JSON.stringify(harness.startsWith('.') ? harness : `./${harness}`)};`,
      ...specFiles().map((f) => `import ${JSON.stringify(join(coreDist, f))};`),
      'await registerTarget();',
      'runSpecs(process.argv[2]);',
      '',
    ].join('\n'),
  );
  const outfile = join(outDir, `${target}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    mainFields: ['module', 'main'],
    // tfjs-core's package.json lists its files with side effects, and its spec files are not among them: without
    // this, the bundler drops every spec as an unused import.
    ignoreAnnotations: true,
    logLevel: 'error',
    // The addon loader has no tfjs in it and requires optional packages by name: loaded at run time.
    external: ['@mapbox/node-pre-gyp', '@tensorflow/tfjs-node-gpu'],
    plugins: [keepImportMetaUrl, adaptTfjsNode],
    banner: {
      // CommonJS inside an ESM bundle: its require() of Node built-ins, externals and the addon.
      js: [
        "import { createRequire as __opSpecCreateRequire } from 'node:module';",
        "import { fileURLToPath as __opSpecFileURLToPath } from 'node:url';",
        'const require = __opSpecCreateRequire(import.meta.url);',
        // emscripten's Node glue (the wasm backend) reads __filename/__dirname
        'const __filename = __opSpecFileURLToPath(import.meta.url);',
        "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
      ].join(' '),
    },
    define: {
      OP_SPEC_TARGET: JSON.stringify(target),
      WASM_DIST: JSON.stringify(wasmDist + '/'),
    },
  });
  return outfile;
}

/** Bundles and runs the specs on `target` in a child process; its results. */
export async function runOpSpecs(target: OpSpecTarget, timeoutMs = 20 * 60_000): Promise<OpSpecResult> {
  const file = await bundle(target);
  const out = file.replace(/\.mjs$/, '.json');
  writeFileSync(out, '');
  const r = spawnSync(process.execPath, [file, out], {
    cwd: root,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
  });
  const text = readFileSync(out, 'utf8');
  if (!text) {
    throw new Error(
      `op specs on ${target}: no results (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).slice(-2000)}`,
    );
  }
  return JSON.parse(text) as OpSpecResult;
}

/** The failed specs' names, sorted. */
export const failedNames = (r: OpSpecResult) =>
  r.specs
    .filter((s) => s.status === 'failed')
    .map((s) => s.name)
    .sort();

export type KnownFailures = Record<'wasm-stock' | 'tensorflow-stock', string[]>;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { target: { type: 'string', default: 'wasm' }, 'write-known': { type: 'boolean', default: false } },
  });
  const target = values.target as OpSpecTarget;
  if (!OP_SPEC_TARGETS.includes(target)) {
    console.error(`--target: expected one of ${OP_SPEC_TARGETS.join(', ')}, got ${values.target}`);
    process.exit(2);
  }
  const result = await runOpSpecs(target);
  const count = (s: string) => result.specs.filter((x) => x.status === s).length;
  console.log(
    `${target}: ${count('passed')} passed, ${count('failed')} failed, ${count('excluded') + count('pending')} ` +
      `skipped of ${result.specs.length} specs (tfjs-core ${result.tfjsCore}, ${result.seconds.toFixed(0)} s)`,
  );
  for (const s of result.specs.filter((x) => x.status === 'failed').slice(0, 40)) {
    console.log(`  ✖ ${s.name}: ${s.message}`);
  }
  if (values['write-known']) {
    if (!target.endsWith('-stock')) {
      console.error('--write-known records a stock target: --target wasm-stock or tensorflow-stock');
      process.exit(2);
    }
    const key = target as keyof KnownFailures;
    let known: Partial<KnownFailures> = {};
    try {
      known = JSON.parse(readFileSync(KNOWN_FAILURES_FILE, 'utf8')) as Partial<KnownFailures>;
    } catch {
      // a first run writes the file
    }
    known[key] = failedNames(result);
    writeFileSync(KNOWN_FAILURES_FILE, JSON.stringify(known, null, 2) + '\n');
    console.log(`wrote ${known[key]!.length} names under "${key}" in ${relative(root, KNOWN_FAILURES_FILE)}`);
  }
}
