/**
 * Turns zod issues into one line per problem: the path, the value given and what is allowed, e.g.
 * `training.epochs: got -1, expected an integer >= 1`. Workflow-safe (zod only).
 */
import type { z } from 'zod';

type Schema = z.core.$ZodType;
type Issue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

/** `training.epochs`, `evaluation.attacks[0].eps`, `dataset.sha256["train-images-idx3-ubyte.gz"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out || '(spec)';
}

/** A value as a person reads it in an error: JSON, shortened. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text =
      typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const def = (schema: Schema) => schema._zod.def as unknown as Record<string, unknown> & { type: string };

/** Strips wrappers (optional, default, pipe, ...) down to the schema that does the checking. */
function unwrap(schema: Schema): Schema {
  for (let i = 0; i < 32; i++) {
    const d = def(schema);
    if ('innerType' in d && d.innerType) schema = d.innerType as Schema;
    else if (d.type === 'pipe') schema = d.in as Schema;
    else if (d.type === 'lazy') schema = (d.getter as () => Schema)();
    else return schema;
  }
  return schema;
}

/** The options of a union, or the schema itself. */
function alternatives(schema: Schema): Schema[] {
  const s = unwrap(schema);
  const d = def(s);
  return d.type === 'union' ? (d.options as Schema[]).flatMap(alternatives) : [s];
}

function shapeOf(schema: Schema): Record<string, Schema> | undefined {
  const d = def(schema);
  return d.type === 'object' ? (d.shape as Record<string, Schema>) : undefined;
}

/** The schemas (one per union alternative) found at `path` below `root`. */
function schemasAt(root: Schema | undefined, path: Path, input?: unknown): Schema[] {
  if (!root) return [];
  let current = alternatives(root);
  for (const key of path) {
    const next: Schema[] = [];
    for (const s of current) {
      const d = def(s);
      const shape = shapeOf(s);
      if (shape && typeof key === 'string' && shape[key]) next.push(...alternatives(shape[key]));
      else if (d.type === 'array' && typeof key === 'number') next.push(...alternatives(d.element as Schema));
      else if (d.type === 'record') next.push(...alternatives(d.valueType as Schema));
    }
    current = next;
  }
  if (input && typeof input === 'object' && 'kind' in input && current.length > 1) {
    const kind = (input as { kind: unknown }).kind;
    const matching = current.filter((s) => {
      const k = shapeOf(s)?.kind;
      return k && def(unwrap(k)).type === 'literal' && (def(unwrap(k)).values as unknown[]).includes(kind);
    });
    if (matching.length) return matching;
  }
  return current;
}

const isInt = (schemas: Schema[]) =>
  schemas.some((s) => def(s).type === 'number' && (s as unknown as { isInt?: boolean }).isInt === true);

const typeWords: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object (a mapping of keys)',
  array: 'a list',
  record: 'an object (a mapping of keys)',
  literal: 'a fixed value',
  null: 'null',
  nan: 'NaN',
};

const plural = (n: number | bigint, word: string) => `${n} ${word}${Number(n) === 1 ? '' : 's'}`;

/** Edit distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

/** What an issue says is allowed: `an integer >= 1`, `one of "idx" | "cifar10-binary"`. */
function expectation(issue: Issue, schemas: Schema[]): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${typeWords[issue.expected] ?? issue.expected}`;
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = small ? issue.minimum : issue.maximum;
      const op = issue.inclusive === false ? (small ? '>' : '<') : small ? '>=' : '<=';
      if (issue.origin === 'number' || issue.origin === 'bigint')
        return `expected ${isInt(schemas) ? 'an integer' : 'a number'} ${op} ${bound}`;
      const unit = issue.origin === 'string' ? 'character' : issue.origin === 'array' ? 'item' : 'entry';
      if (issue.code === 'too_small' && Number(bound) === 1 && issue.origin === 'string')
        return 'expected a non-empty string';
      return `expected ${small ? 'at least' : 'at most'} ${plural(bound, unit)}`;
    }
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${formatValue(issue.values[0])}`
        : `expected one of ${issue.values.map(formatValue).join(' | ')}`;
    case 'invalid_format':
      return issue.message.startsWith('expected')
        ? issue.message
        : `expected a string in ${issue.format} format${'pattern' in issue && issue.pattern ? ` (${issue.pattern})` : ''}`;
    case 'not_multiple_of':
      return `expected a multiple of ${issue.divisor}`;
    case 'invalid_union':
      if ('discriminator' in issue && issue.discriminator && 'options' in issue)
        return `expected ${issue.discriminator} to be one of ${(issue.options as unknown[]).map(formatValue).join(' | ')}`;
      return `expected ${issue.errors
        .map((errs) => {
          const top = errs.find((e) => e.path.length === 0);
          return top ? expectation(top, []).replace(/^expected /, '') : 'an object';
        })
        .filter((e, i, all) => all.indexOf(e) === i)
        .join(' or ')}`;
    default:
      return issue.message.startsWith('expected') ? issue.message : `expected ${issue.message}`;
  }
}

function linesFor(issue: Issue, prefix: Path, root: Schema | undefined): string[] {
  const path = [...prefix, ...issue.path];
  const input = (issue as { input?: unknown }).input;
  if (issue.code === 'unrecognized_keys') {
    const [schema] = schemasAt(root, path, input).filter((s) => shapeOf(s));
    const allowed = schema ? Object.keys(shapeOf(schema) ?? {}) : [];
    return issue.keys.map((key) => {
      const near = allowed
        .map((a) => [a, distance(key, a)] as const)
        .filter(([, d]) => d <= Math.max(1, Math.floor(key.length / 3)))
        .sort((x, y) => x[1] - y[1])[0];
      const hint = near ? ` (did you mean ${near[0]}?)` : '';
      const list = allowed.length ? `; allowed keys: ${allowed.join(', ')}` : '';
      return `${formatPath([...path, key])}: unknown key${hint}${list}`;
    });
  }
  if (issue.code === 'invalid_union') {
    if ('discriminator' in issue && issue.discriminator) {
      // zod puts the discriminator into the path already and the whole object into input.
      const given =
        input && typeof input === 'object' ? (input as Record<string, unknown>)[issue.discriminator] : input;
      const options = ('options' in issue ? (issue.options as unknown[]) : []).map(formatValue).join(' | ');
      const target = issue.path.at(-1) === issue.discriminator ? path : [...path, issue.discriminator];
      return [`${formatPath(target)}: got ${formatValue(given)}, expected one of ${options}`];
    }
    // When some alternative matched the shape but failed deeper, those deeper problems are the useful ones.
    const deeper = issue.errors.find((errs) => errs.length > 0 && errs.every((e) => e.path.length > 0));
    if (deeper) return deeper.flatMap((e) => linesFor(e, path, root));
  }
  if (issue.code === 'custom' && !issue.message.startsWith('expected'))
    return [`${formatPath(path)}: ${issue.message}${input === undefined ? '' : ` (got ${formatValue(input)})`}`];
  const got = input === undefined ? 'missing' : `got ${formatValue(input)}`;
  return [`${formatPath(path)}: ${got}, ${expectation(issue, schemasAt(root, path))}`];
}

/**
 * One line per problem, in the order zod found them. `schema` (the one that produced the error) lets the lines
 * say "an integer" rather than "a number" and list the keys an object allows. Parse with `reportInput: true`
 * so the lines can say what was given.
 */
export function formatZodErrors(error: { issues: readonly Issue[] }, schema?: Schema): string[] {
  const lines = error.issues.flatMap((issue) => linesFor(issue, [], schema));
  return lines.filter((line, i) => lines.indexOf(line) === i);
}
