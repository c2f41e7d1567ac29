/** The committed JSON Schema matches the zod spec, and says what the spec says. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { specJsonSchema, specJsonSchemaText } from '../../../schemas/json-schema';

const committed = fileURLToPath(new URL('../../../schemas/spec.schema.json', import.meta.url));

test('schemas/spec.schema.json is up to date (run npx tsx scripts/generate-json-schema.ts)', async () => {
  const text = await readFile(committed, 'utf8');
  assert.equal(text, specJsonSchemaText(), 'the committed JSON Schema drifted from schemas/spec.ts');
});

test('the JSON Schema is strict, requires only version, and documents defaults', () => {
  const schema = specJsonSchema() as {
    required: string[];
    additionalProperties: boolean;
    properties: Record<
      string,
      { default?: unknown; properties?: Record<string, { default?: unknown }>; additionalProperties?: boolean }
    >;
  };
  assert.deepEqual(schema.required, ['version']);
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.properties.training.additionalProperties, false);
  assert.equal(schema.properties.training.properties?.epochs.default, 5);
  assert.equal(schema.properties.dataset.properties?.source.default, '/usr/share/datasets/fashion-mnist');
});
