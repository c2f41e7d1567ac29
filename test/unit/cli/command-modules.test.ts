// The CLI's module rules: command modules are light at their top level (`tempered --help` loads all of them for
// their summaries), nothing imports the entry file, and the published package holds every folder the CLI reaches.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../../../infra/config';
import { commands, main } from '../../../cli/main';
import { importGraph } from '../../support/imports';

const commandModules = [
  ...readFileSync(join(REPO_ROOT, 'cli', 'main.ts'), 'utf8').matchAll(/import\('\.\/([a-z-]+)'\)/g),
].map((m) => `cli/${m[1]}.ts`);

/** Packages a command module may load at its top level: the rest waits for its run. */
const LIGHT = (pkg: string) => pkg.startsWith('node:') || pkg === 'zod' || pkg === 'yaml';

describe('command modules', () => {
  test('load no heavy package at their top level (Temporal client, tfjs, minio, sharp)', () => {
    const modules = [...new Set(commandModules)];
    assert.ok(modules.length >= 8, `found ${modules.join(', ')}`);
    for (const module of modules) {
      const { packages, files } = importGraph(module);
      const heavy = [...packages].filter((p) => !LIGHT(p));
      assert.deepEqual(
        heavy,
        [],
        `${module} loads ${heavy.join(', ')} at its top level (via ${[...files].join(', ')})`,
      );
    }
  });

  test('nothing in the source tree imports the entry file cli/main.ts', () => {
    for (const dir of ['cli', 'client', 'worker', 'serve', 'infra', 'schemas', 'activities', 'workflows']) {
      for (const file of readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })) {
        if (!file.endsWith('.ts')) continue;
        const text = readFileSync(join(REPO_ROOT, dir, file), 'utf8');
        assert.doesNotMatch(text, /from '\.\/main'|import\('\.\/main'\)|cli\/main'/, `${dir}/${file} imports cli/main`);
      }
    }
  });

  test('every command carries its name, summary and help', async () => {
    for (const [name, load] of Object.entries(commands)) {
      const command = await load();
      assert.equal(command.name, name);
      assert.ok(command.summary.length > 10, `${name}: summary`);
      assert.match(command.help, new RegExp(`^Usage: tempered ${name}`));
    }
  });

  test('top-level help prints each command with its own summary', async () => {
    let out = '';
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
    try {
      assert.equal(await main(['--help']), 0);
    } finally {
      process.stdout.write = write;
    }
    for (const [name, load] of Object.entries(commands)) {
      const { summary } = await load();
      assert.match(out, new RegExp(`^  ${name} +${summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    }
  });
});

describe('the published package', () => {
  test('package.json files holds every folder the CLI reaches, static or dynamic imports', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      files: string[];
      dependencies: Record<string, string>;
    };
    const { files, packages } = importGraph('bin/tempered.js', { dynamic: true });
    const folders = new Set([...files].map((f) => f.split('/')[0]));
    for (const folder of folders) assert.ok(pkg.files.includes(folder), `${folder}/ is imported but not in files`);
    for (const name of packages) {
      if (name.startsWith('node:')) continue;
      assert.ok(name in pkg.dependencies, `${name} is imported by the CLI but not a dependency`);
    }
  });
});
