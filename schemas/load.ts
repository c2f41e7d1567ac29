/**
 * Reading specs from files (YAML or JSON). Node-only: never import this from workflows.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { YAMLParseError, parse as parseYaml } from 'yaml';
import { type Spec, parseSpec } from './spec';

/** A spec file that cannot be read or parsed as YAML/JSON; the message names the file (and line when known). */
export class SpecFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
    this.name = 'SpecFileError';
  }
}

/** Parses spec text: JSON for `.json` files, YAML otherwise (YAML is a superset of JSON). */
export function parseSpecText(text: string, file: string): unknown {
  if (extname(file).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new SpecFileError(file, `not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) as unknown;
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const at = err.linePos?.[0];
      const where = at ? `line ${at.line}, column ${at.col}: ` : '';
      throw new SpecFileError(
        file,
        `not valid YAML: ${where}${err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
        { cause: err },
      );
    }
    throw new SpecFileError(file, `not valid YAML: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads a spec file without validating it. */
export async function readSpecFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SpecFileError(file, code === 'ENOENT' ? 'no such file' : `cannot read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseSpecText(text, file);
}

/**
 * Reads and validates a spec file. Throws `SpecFileError` when the file cannot be read or parsed, and
 * `SpecError` (every problem, one line each, the file named first) when it does not validate.
 */
export async function loadSpec(file: string): Promise<Spec> {
  return parseSpec(await readSpecFile(file), file);
}
