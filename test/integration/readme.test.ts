// The README is a test: every `npx tempered …`, `tempered …` and `npm run …` line in a shell code block of
// README.md and docs/*.md runs as written, through npm's bin link, against the test stack. Each must exit as
// expected (0 unless its row says otherwise) and print something; every flag it shows, in the command or in its
// comment, must be one the command accepts; every environment variable the docs name must be one the code reads.
//
// To document a new command: write it in the docs. It runs as written with the defaults below; when it needs
// more (a run waiting for approval, a tiny spec instead of a long job, a server that runs until stopped) or
// cannot run in a test at all (an install, the demo itself), add one row to TABLE. A row that matches no
// documented line fails the test, so the table cannot go stale.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { connectClient, startHardeningRun } from '../../client/index';
import { commands } from '../../cli/main';
import { PORT_NAMES, REPO_ROOT, portEnvName } from '../../infra/config';
import { ENV_VARS } from '../../infra/env';
import { down, pickFreePorts } from '../../infra/stack';
import { loadSpec } from '../../schemas/load';
import { buildReferenceCnn, saveModelToBytes } from '../../tensor/models';
import { fakeActivities, workflowBundle } from '../unit/workflows/env';
import { binLink } from '../support/cli';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';

Runtime.install({ logger: new DefaultLogger('WARN') });

/** What the test prepares for the lines that need it. */
interface Fixtures {
  /** A run that completed (on this test's workers, with fake activities). */
  completed: string;
  /** Runs waiting for approval, one per decision a line takes. */
  toCancel: string;
  toApprove: string;
  toReject: string;
  /** A spec of a few seconds' work on this test's worker queues, for lines that would train for minutes. */
  tinySpec: string;
  /** modelName of examples/nightly-production.yaml, for `harden-<model>-nightly`. */
  nightlyModel: string;
}

interface Row {
  /** Not run, and why (installs, the demo itself, jobs of minutes). Its flags are still checked. */
  skip?: string;
  /** Expected exit code (default 0). */
  exit?: number;
  /** Which fixture stands for a placeholder (default: `<workflow-id>` → completed, `<model>` → nightlyModel). */
  placeholders?: Record<string, keyof Fixtures>;
  /** [from, to] text replacements before running: a tiny spec for a long job, port 0 for a fixed port. */
  replace?: [string, (f: Fixtures) => string][];
  /** A server: runs until its output matches, then gets SIGTERM and must exit 0. */
  until?: RegExp;
  /** What its output must show, and what it must not (e.g. the SDK's own log lines). */
  prints?: RegExp;
  hides?: RegExp;
  /** `own-stack`: no server in the environment, a fresh home and free ports (what `tempered up` starts). */
  env?: 'own-stack';
}

/** The one table: documented lines (comment stripped, spaces collapsed) that need more than the defaults. */
const TABLE: Record<string, Row> = {
  'npm ci': { skip: 'installs the dependencies this test runs on' },
  'npm run demo': { skip: 'the demo itself, minutes of real training; its parts (stack, worker, run) run here' },
  'npm test': { skip: 'the suite this test is part of' },
  'npx tempered up': { env: 'own-stack' },
  'npx tempered status': { env: 'own-stack' },
  'npx tempered down': { env: 'own-stack' },
  'npx tempered worker': {
    until: /worker: polling/,
    prints: /Temporal SDK and bundler logs go to \S+\/logs\/worker\.log/,
    hides: /\[INFO\]|Workflow bundle created|webpack/,
  },
  'npx tempered run examples/fashion-mnist-demo.yaml --wait': {
    replace: [['examples/fashion-mnist-demo.yaml', (f) => f.tinySpec]],
  },
  'npx tempered cancel <workflow-id>': { placeholders: { 'workflow-id': 'toCancel' } },
  'npx tempered approve <workflow-id> --by alice': { placeholders: { 'workflow-id': 'toApprove' } },
  'npx tempered reject <workflow-id> --by alice --reason "clean accuracy too low"': {
    placeholders: { 'workflow-id': 'toReject' },
  },
  'npx tempered serve --name fashion-mnist-demo --port 8080': {
    until: /listening on/,
    replace: [['--port 8080', () => '--port 0']],
  },
  'npx tempered serve --model s3://tempered/models/fashion-mnist-demo/versions/v2/': {
    until: /listening on/,
    replace: [['versions/v2/', () => 'versions/v2/ --port 0']],
  },
  'npm run typecheck': { skip: 'a static check of the whole tree (minutes on 2 cores), not a behaviour' },
  'npm run lint': { skip: 'a static check of the whole tree, not a behaviour' },
  'npm run format:check': { skip: 'a static check of the whole tree, not a behaviour' },
  'npm run bench': { skip: 'a measurement of minutes against PyTorch' },
  'npx tempered resume <workflow-id>': {
    // The completed fixture: a completed run is refused with the reason (resuming a failed one: resume.test.ts).
    exit: 1,
    prints: /only a failed, cancelled or timed-out run can be resumed/,
  },
  'npm run evaluate -- --model .tempered/reference/adversarial --suite standard --eps 0.1 --images 1000 --json': {
    skip: 'the standard suite on 1000 images, an hour on 2 cores; the script is tested in test/unit/tensor/eval/command.test.ts',
  },
  'npm run setup:tensorflow': { skip: 'downloads the TensorFlow wheel (274 MB) once; CI runs it as an install step' },
  'npm run train:reference -- --mode adversarial --epochs 4 --train-size 60000 --out /tmp/robust --json': {
    skip: 'the 25-minute reference training run',
  },
};

const DEFAULT_PLACEHOLDERS: Record<string, keyof Fixtures> = { 'workflow-id': 'completed', model: 'nightlyModel' };

interface DocLine {
  /** `README.md:97`. */
  where: string;
  /** The command as written (one of `a && b`), comment stripped, spaces collapsed. */
  command: string;
  /** The comment after it, if any. */
  comment: string;
}

/** Splits off a `# comment` that is not inside quotes. */
function splitComment(line: string): [string, string] {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return [line.slice(0, i), line.slice(i + 1)];
  }
  return [line, ''];
}

/** Every tempered / npm run command in the shell code blocks of `text`. */
export function documentedCommands(text: string, file: string): DocLine[] {
  const out: DocLine[] = [];
  const lines = text.split('\n');
  let inShell = false;
  let fence = false;
  for (let i = 0; i < lines.length; i++) {
    const fenceMatch = /^\s*```(\w*)/.exec(lines[i]);
    if (fenceMatch) {
      fence = !fence;
      inShell = fence && ['sh', 'bash', 'shell', 'console'].includes(fenceMatch[1]);
      continue;
    }
    if (!inShell) continue;
    let line = lines[i];
    const start = i;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i].trim()}`;
    const [code, comment] = splitComment(line);
    for (const part of code.split('&&')) {
      const command = part.trim().replace(/\s+/g, ' ');
      if (/^(npx tempered|tempered|npm run|npm ci|npm test)\b/.test(command))
        out.push({ where: `${file}:${start + 1}`, command, comment: comment.trim() });
    }
  }
  return out;
}

/** Shell words of a command line (quotes removed). */
function words(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

async function docs(): Promise<{ file: string; text: string }[]> {
  const files = [
    'README.md',
    ...(await readdir(join(REPO_ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ];
  return Promise.all(files.map(async (file) => ({ file, text: await readFile(join(REPO_ROOT, file), 'utf8') })));
}

interface Outcome {
  code: number | null;
  output: string;
}

/** Runs a line with bash, `tempered` resolving to the bin link; a server runs until `until` matches. */
function runLine(line: string, env: NodeJS.ProcessEnv, until?: RegExp, timeoutMs = 120_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `exec ${line}`], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stopped = false;
    const stop = (why: string) => {
      if (stopped) return;
      stopped = true;
      if (why) output += `\n[${why}]`;
      child.kill('SIGTERM');
    };
    const onData = (d: Buffer) => {
      output += d.toString();
      // A moment after it says it is ready, as a person pressing Ctrl-C would.
      if (until?.test(output)) setTimeout(() => stop(''), 1000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => stop(`killed after ${timeoutMs} ms`), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('every command the README and docs show', () => {
  const conn = stackFromEnv();
  const ioQueue = uniqueName('readme-io');
  const heavyQueue = uniqueName('readme-heavy');
  const modelName = uniqueName('readme').toLowerCase().slice(0, 40);
  let dir: string;
  let client: Client;
  let native: NativeConnection;
  let workers: Worker[] = [];
  let running: Promise<unknown>[] = [];
  let fixtures: Fixtures;
  let documented: DocLine[];
  const pathWithLink = `${dirname(binLink())}:${process.env.PATH}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tempered-readme-'));
    documented = (await docs()).flatMap(({ file, text }) => documentedCommands(text, file));
    native = await NativeConnection.connect({ address: conn.temporal.address });
    const { activities } = fakeActivities();
    const common = { connection: native, namespace: conn.temporal.namespace, activities } as const;
    workers = [
      await Worker.create({ ...common, taskQueue: ioQueue, workflowBundle: await workflowBundle() }),
      await Worker.create({ ...common, taskQueue: heavyQueue }),
    ];
    running = workers.map((w) => w.run());
    client = await connectClient({ env: { ...process.env, TEMPERED_HOME: join(dir, 'no-stack') } });

    const spec = (extra: object = {}) => ({
      version: 1,
      artifacts: { modelName },
      compute: { ioQueue, heavyQueue },
      ...extra,
    });
    const tinySpec = join(dir, 'tiny.json');
    await writeFile(tinySpec, JSON.stringify(spec()));
    const completed = await startHardeningRun(client, spec(), { workflowId: uniqueName(`harden-${modelName}`) });
    await completed.result();
    const waiting = async () => {
      const run = await startHardeningRun(client, spec({ gate: { requireApproval: true } }), {
        workflowId: uniqueName(`harden-${modelName}`),
      });
      for (let i = 0; i < 200 && !(await run.progress().catch(() => undefined))?.awaitingApproval; i++)
        await new Promise((r) => setTimeout(r, 100));
      return run.workflowId;
    };
    const nightly = await loadSpec(join(REPO_ROOT, 'examples', 'nightly-production.yaml'));
    fixtures = {
      completed: completed.workflowId,
      toCancel: await waiting(),
      toApprove: await waiting(),
      toReject: await waiting(),
      tinySpec,
      nightlyModel: nightly.artifacts.modelName,
    };

    // `tempered serve` documents the model fashion-mnist-demo: a version v2 and the production pointer at it.
    const store = storeFromEnv();
    await store.ensureBucket('tempered');
    const model = buildReferenceCnn({ seed: 1 });
    const files = await saveModelToBytes(model);
    model.dispose();
    const prefix = 'models/fashion-mnist-demo';
    for (const [file, bytes] of Object.entries(files))
      await store.putBytes('tempered', `${prefix}/versions/v2/${file}`, bytes);
    await store.putJson('tempered', `${prefix}/production.json`, {
      version: 'v2',
      uri: `s3://tempered/${prefix}/versions/v2/`,
      promotedAt: new Date().toISOString(),
    });
  });

  after(async () => {
    // The documented schedule trigger starts a nightly run on the default queue: end it, so no later test's
    // worker picks it up.
    if (client && fixtures) {
      for await (const w of client.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
        if (w.workflowId.startsWith(`harden-${fixtures.nightlyModel}-nightly`))
          await client.workflow
            .getHandle(w.workflowId)
            .terminate('README test cleanup')
            .catch(() => undefined);
      }
    }
    if (dir) await down({ home: join(dir, 'own-stack'), env: {} }); // `tempered up` leaves its servers running
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
    await client?.connection.close();
    await native?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the docs show commands, and every row of the table matches one of them', () => {
    assert.ok(documented.length >= 20, documented.map((d) => d.command).join('\n'));
    const shown = new Set(documented.map((d) => d.command));
    for (const key of Object.keys(TABLE)) assert.ok(shown.has(key), `table row matches no documented line: ${key}`);
  });

  test('every flag a documented tempered line shows, in the command or its comment, is accepted', async () => {
    const problems: string[] = [];
    for (const d of documented) {
      const w = words(d.command);
      const at = w.indexOf('tempered');
      if (at < 0 || w[0] === 'npm') continue;
      const name = w[at + 1];
      const load = commands[name];
      if (!load) {
        problems.push(`${d.where}: unknown command ${name}`);
        continue;
      }
      const { flags } = await load();
      const shown = [...w.slice(at + 2), ...words(d.comment)].flatMap((t) => [
        ...t.matchAll(/(?:^|\()--([a-z][a-z-]*)/g),
      ]);
      for (const m of shown) if (!flags.includes(m[1])) problems.push(`${d.where}: tempered ${name} has no --${m[1]}`);
    }
    assert.deepEqual(problems, []);
  });

  test('every npm run line names a script of package.json', async () => {
    const { scripts } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const d of documented) {
      const m = /^npm run (\S+)/.exec(d.command);
      if (m) assert.ok(m[1] in scripts, `${d.where}: npm run ${m[1]}: no such script`);
    }
  });

  test('every environment variable the docs name is one tempered reads (infra/env.ts)', async () => {
    const names = (text: string) => text.match(/\b(?:TEMPERED|TEMPORAL|S3|MINIO)_[A-Z0-9_]*[A-Z0-9]\b/g) ?? [];
    const unknown: string[] = [];
    for (const { file, text } of await docs())
      for (const n of new Set(names(text))) if (!(n in ENV_VARS)) unknown.push(`${file}: ${n}`);
    assert.deepEqual(unknown, []);
  });

  test('each documented line runs as written through the bin link: expected exit, some output', async () => {
    const failures: string[] = [];
    const ownHome = join(dir, 'own-stack');
    const ports = await pickFreePorts();
    for (const d of documented) {
      const row = TABLE[d.command] ?? {};
      if (row.skip) continue;
      let line = d.command.replace(/^npx tempered\b/, 'tempered');
      for (const [from, to] of row.replace ?? []) line = line.replace(from, to(fixtures));
      const placeholders = { ...DEFAULT_PLACEHOLDERS, ...row.placeholders };
      line = line.replace(/<([a-z-]+)>/g, (whole, p: string) =>
        p in placeholders ? fixtures[placeholders[p]] : whole,
      );
      let env: NodeJS.ProcessEnv = { ...process.env, PATH: pathWithLink, TEMPERED_HOME: join(dir, 'no-stack') };
      if (row.env === 'own-stack') {
        env = { ...env, TEMPERED_HOME: ownHome };
        for (const k of [
          'TEMPORAL_ADDRESS',
          'TEMPORAL_NAMESPACE',
          'TEMPORAL_UI_URL',
          'S3_ENDPOINT',
          'S3_ACCESS_KEY',
          'S3_SECRET_KEY',
          'S3_REGION',
        ])
          delete env[k];
        for (const name of PORT_NAMES) env[portEnvName(name)] = String(ports[name]);
      }
      const started = Date.now();
      const { code, output } = await runLine(line, env, row.until);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const expected = row.exit ?? 0;
      process.stdout.write(`# ${d.where} ${line} → exit ${code} in ${seconds} s\n`);
      if (code !== expected)
        failures.push(
          `${d.where}: ${line}\n  exit ${code}, expected ${expected}\n${output.trim().split('\n').slice(-5).join('\n')}`,
        );
      else if (!output.trim()) failures.push(`${d.where}: ${line}\n  printed nothing`);
      else if (row.until && !row.until.test(output)) failures.push(`${d.where}: ${line}\n  never printed ${row.until}`);
      else if (row.prints && !row.prints.test(output))
        failures.push(`${d.where}: ${line}\n  never printed ${row.prints}`);
      else if (row.hides?.test(output)) failures.push(`${d.where}: ${line}\n  printed ${row.hides}:\n${output}`);
    }
    assert.deepEqual(failures, []);
  });
});
