// `tempered validate <spec> [--json]`: every problem of a spec at once, one per line. Exit 0 valid, 2 invalid.
import { SpecFileError, readSpecFile } from '../schemas/load';
import type { Spec } from '../schemas/spec';
import { formatSpecErrors, safeParseSpec } from '../schemas/spec';
import { defineCommand } from './command';
import { positional, print, printJson } from './common';
import { EXIT } from './format';

const USAGE = 'tempered validate <spec.yaml> [--json]';

export interface Validation {
  valid: boolean;
  file: string;
  errors: string[];
  spec?: Spec;
}

/** Reads and validates a spec file; never throws for a bad file, it reports it. */
export async function validateSpecFile(file: string): Promise<Validation> {
  let input: unknown;
  try {
    input = await readSpecFile(file);
  } catch (err) {
    if (err instanceof SpecFileError) return { valid: false, file, errors: [err.message] };
    throw err;
  }
  const result = safeParseSpec(input);
  if (!result.success) return { valid: false, file, errors: formatSpecErrors(result.error) };
  return { valid: true, file, errors: [], spec: result.data };
}

export const validateCommand = defineCommand({
  name: 'validate',
  summary: 'check a spec file and list every problem (exit 2 when invalid)',
  usage: USAGE,
  help: [
    '',
    'Checks a spec file (YAML or JSON) against the schema and prints every problem, one per line, path first.',
    'Exit 0 when valid, 2 when not.',
    '',
    '  --json           print { valid, file, errors[], spec } (spec: the parsed spec, defaults filled)',
  ],
  json: true,
  positionals: true,
  async run({ positionals, json }) {
    const file = positional(positionals, 'spec', USAGE);
    const v = await validateSpecFile(file);
    if (json) printJson(v);
    else if (v.valid) {
      const s = v.spec!;
      print(
        `${file}: valid (model ${s.artifacts.modelName}, ${s.training.epochs} epochs at ε ${s.epsilon.max}, ` +
          `model source ${s.model.source.kind}, queues ${s.compute.ioQueue}/${s.compute.heavyQueue})`,
      );
    } else {
      process.stderr.write(`${file}: invalid spec (${v.errors.length} problem${v.errors.length === 1 ? '' : 's'})\n`);
      for (const line of v.errors) print(line);
    }
    return v.valid ? 0 : EXIT.usage;
  },
});
