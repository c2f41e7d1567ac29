/**
 * Writes `schemas/spec.schema.json` from the zod spec. Run after changing `schemas/spec.ts`:
 *   npx tsx scripts/generate-json-schema.ts          (write)
 *   npx tsx scripts/generate-json-schema.ts --check  (exit 1 when the committed file is stale)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { specJsonSchemaText } from '../schemas/json-schema';

export const SCHEMA_FILE = fileURLToPath(new URL('../schemas/spec.schema.json', import.meta.url));

async function main(args: string[]): Promise<void> {
  const text = specJsonSchemaText();
  if (args.includes('--check')) {
    const current = await readFile(SCHEMA_FILE, 'utf8').catch(() => '');
    if (current !== text) {
      console.error(`${SCHEMA_FILE} is stale: run npx tsx scripts/generate-json-schema.ts`);
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(SCHEMA_FILE, text);
  console.log(`wrote ${SCHEMA_FILE}`);
}

await main(process.argv.slice(2));
