// The contract of every `tempered <command>`, and defineCommand, which does once what each command needs: the
// strict parseArgs preamble, `--help`/`-h` (usage and help text, exit 0) and the optional `--json` flag.
// Command modules import this file, never the entry (cli/main.ts), so no import circle forms. Command modules stay
// light at their top level (node built-ins, this file, ./common, ./format, schemas): `tempered --help` loads every
// one of them to read their summaries, and must not pay for the Temporal client or tfjs. Heavy modules are imported
// inside `run` (test/unit/cli/command-modules.test.ts checks it).
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

/** Thrown by commands for bad usage: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Command {
  /** The word after `tempered`. */
  name: string;
  /** One line for `tempered --help`. */
  summary: string;
  /** Everything `tempered <name> --help` prints. */
  help: string;
  /** The long flags it accepts, without dashes (`help` and, where printed as JSON, `json` included). */
  flags: string[];
  /** Runs with the arguments after the command name; returns the exit code (default 0). */
  run(argv: string[]): Promise<number | void>;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

const HELP_FLAG = { help: { type: 'boolean', short: 'h', default: false } } as const;
const JSON_FLAG = { json: { type: 'boolean', default: false } } as const;

/** The values parseArgs gives for `options` (strict), typed from the option table. */
export type FlagValues<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>['values'];

export interface CommandDefinition<O extends OptionsConfig> {
  name: string;
  summary: string;
  /** The usage line without `Usage: `, e.g. `tempered show <workflow-id> [--json]`. */
  usage: string;
  /** The help lines after the usage line: what it does, then one line per option. */
  help: string[];
  /** The command's own flags (without --help and --json). */
  options?: O;
  /** Accept `--json` (the command prints JSON when it is given). Default false. */
  json?: boolean;
  /** Accept positional arguments. Default false: any positional is a usage error. */
  positionals?: boolean;
  /** `help` is the command's full help text, for a command that prints it on a bare call. */
  run(input: { values: FlagValues<O>; positionals: string[]; json: boolean; help: string }): Promise<number | void>;
}

/** A Command from its definition: flags parsed strictly (an unknown flag exits 2), --help answered here. */
export function defineCommand<const O extends OptionsConfig = Record<never, never>>(
  definition: CommandDefinition<O>,
): Command {
  const help = [`Usage: ${definition.usage}`, ...definition.help].join('\n');
  const options = { ...definition.options, ...HELP_FLAG, ...(definition.json ? JSON_FLAG : {}) } as OptionsConfig;
  return {
    name: definition.name,
    summary: definition.summary,
    help,
    flags: Object.keys(options),
    async run(argv) {
      const { values, positionals } = parseArgs({
        args: argv,
        options,
        allowPositionals: definition.positionals ?? false,
        strict: true,
      });
      if (values.help) {
        process.stdout.write(`${help}\n`);
        return 0;
      }
      const json = values.json === true;
      delete values.help;
      delete values.json;
      return definition.run({ values: values as FlagValues<O>, positionals, json, help });
    },
  };
}
