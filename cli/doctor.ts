// `tempered doctor [--json] [--start]`: which tfjs backends this machine can run, and why not the others.
import { print, printJson } from './common';
import { defineCommand } from './command';

export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'list the tfjs backends this machine can run and why not the others',
  usage: 'tempered doctor [--json] [--start]',
  help: [
    '',
    'Lists the tfjs backends in the order the picker tries them (tensorflow-gpu, tensorflow, wasm, cpu), whether',
    'this machine has what each needs and, when not, what is missing (`npm run setup:tensorflow` builds the native',
    "ones). The automatic choice is the first available one; TEMPERED_BACKEND or a spec's compute.backend names one.",
    '',
    '  --start   also start the backend the picker chooses (loads tfjs and the native library; a few seconds)',
    '  --json    one JSON object instead of the table',
  ],
  options: { start: { type: 'boolean', default: false } },
  json: true,
  async run({ values, json }) {
    const { bestBackend, probeBackends } = await import('../tensor/backend/probe');
    const probes = probeBackends();
    const best = bestBackend(probes);
    let started: { name: string; threads: number; tried: { name: string; error?: string }[] } | undefined;
    if (values.start) {
      const { initBackend } = await import('../tensor/backend/index');
      started = await initBackend('auto', { log: () => {} });
    }
    if (json) {
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
});
