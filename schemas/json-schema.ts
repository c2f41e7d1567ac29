/**
 * The spec's JSON Schema (what a person may write: defaults are optional), for editors and other languages.
 * `scripts/generate-json-schema.ts` writes it to `schemas/spec.schema.json`; a test fails when that file drifts.
 */
import { z } from 'zod';
import { Spec } from './spec';

export const SPEC_SCHEMA_ID = 'https://tempered.dev/schemas/spec.schema.json';

export function specJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(Spec, { io: 'input', target: 'draft-2020-12' }), $id: SPEC_SCHEMA_ID };
}

/** The file's exact text: stable key order, two-space indent, trailing newline. */
export const specJsonSchemaText = (): string => `${JSON.stringify(specJsonSchema(), null, 2)}\n`;
