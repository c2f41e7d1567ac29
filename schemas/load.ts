/**
 * Reading specs from files (YAML or JSON). Node-only: never import this from workflows.
 */
import { readFile, stat } from 'node:fs/promises';
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

/** The largest spec file read (the whole spec travels in every activity input, so in the run's history). */
export const MAX_SPEC_BYTES = 256 * 1024;
/** The deepest nesting of `[` / `{` accepted (a real spec needs 5). */
export const MAX_SPEC_DEPTH = 32;

/** The deepest bracket nesting in `text` outside quoted strings: checked before a parser recurses into it. */
function bracketDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') max = Math.max(max, ++depth);
    else if (c === ']' || c === '}') depth--;
  }
  return max;
}

/** Refuses what a parser should not be handed: an oversized text or one nested deeper than any spec. */
function checkShape(text: string, file: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_SPEC_BYTES) {
    throw new SpecFileError(file, `${bytes} bytes; a spec may have at most ${MAX_SPEC_BYTES}`);
  }
  const depth = bracketDepth(text);
  if (depth > MAX_SPEC_DEPTH) {
    throw new SpecFileError(file, `nested ${depth} levels deep; a spec nests at most ${MAX_SPEC_DEPTH}`);
  }
}

/** The YAML parser's "Map keys must be unique" at line/column, told with the key's name. */
function duplicateKey(err: YAMLParseError, text: string, file: string): SpecFileError | undefined {
  if (err.code !== 'DUPLICATE_KEY') return undefined;
  const at = err.linePos?.[0];
  const rest = text.slice(err.pos[0]);
  const key = /^"((?:[^"\\]|\\.)*)"|^'([^']*)'|^([^:\s,}]+)/.exec(rest);
  const name = key ? (key[1] ?? key[2] ?? key[3]) : '?';
  const where = at ? ` at line ${at.line}, column ${at.col}` : '';
  return new SpecFileError(file, `duplicate key "${name}"${where}: each key may appear once`, { cause: err });
}

/**
 * Parses spec text: JSON for `.json` files, YAML otherwise (YAML is a superset of JSON). Refuses texts over
 * {@link MAX_SPEC_BYTES}, nesting deeper than {@link MAX_SPEC_DEPTH}, and duplicate keys (JSON's last-wins
 * would silently drop the first), naming the key.
 */
export function parseSpecText(text: string, file: string): unknown {
  checkShape(text, file);
  if (extname(file).toLowerCase() === '.json') {
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch (err) {
      throw new SpecFileError(file, `not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    try {
      parseYaml(text, { uniqueKeys: true });
    } catch (err) {
      const dup = err instanceof YAMLParseError ? duplicateKey(err, text, file) : undefined;
      if (dup) throw dup;
    }
    return value;
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) as unknown;
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const dup = duplicateKey(err, text, file);
      if (dup) throw dup;
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
    const size = (await stat(file)).size;
    if (size > MAX_SPEC_BYTES)
      throw new SpecFileError(file, `${size} bytes; a spec may have at most ${MAX_SPEC_BYTES}`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof SpecFileError) throw err;
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
