// `tempered doctor [--json] [--start]`: which tfjs backends this machine can run, and why not the others.
import { parseArgs } from 'node:util';
import { print, printJson } from './common';
import type { Command } from './main';

const HELP = [
  'Usage: tempered doctor [--json] [--start]',
  '',
  'Lists the tfjs backends in the order the picker tries them (tensorflow-gpu, tensorflow, wasm, cpu), whether',
  'this machine has what each needs and, when not, what is missing (`npm run setup:tensorflow` builds the native',
  "ones). The automatic choice is the first available one; TEMPERED_BACKEND or a spec's compute.backend names one.",
  '',
  '  --start   also start the backend the picker chooses (loads tfjs and the native library; a few seconds)',
  '  --json    one JSON object instead of the table',
].join('\n');

export const doctorCommand: Command = {
  summary: 'list the tfjs backends this machine can run and why not the others',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h', default: false },
        json: { type: 'boolean', default: false },
        start: { type: 'boolean', default: false },
      },
      allowPositionals: false,
      strict: true,
    });
    if (values.help) {
      print(HELP);
      return 0;
    }
    const { bestBackend, probeBackends } = await import('../tensor/backend/probe');
    const probes = probeBackends();
    const best = bestBackend(probes);
    let started: { name: string; threads: number; tried: { name: string; error?: string }[] } | undefined;
    if (values.start) {
      const { initBackend } = await import('../tensor/backend/index');
      started = await initBackend('auto', { log: () => {} });
    }
    if (values.json) {
      printJson({ best, backends: probes, ...(started ? { started } : {}) });
      return 0;
    }
    const width = Math.max(...probes.map((p) => p.name.length));
    for (const p of probes) {
      const mark = p.name === best ? '*' : p.available ? '+' : '-';
      print(`${mark} ${p.name.padEnd(width)}  ${p.available ? 'available' : 'not available'}: ${p.detail}`);
    }
    print(`picker's choice here: ${best} (* chosen, + available, - not available)`);
    if (started) {
      const failed = started.tried.filter((t) => t.error).map((t) => `${t.name}: ${t.error}`);
      print(
        `started: ${started.name} (${started.threads} threads)${failed.length ? `; failed: ${failed.join('; ')}` : ''}`,
      );
    }
    return 0;
  },
};
