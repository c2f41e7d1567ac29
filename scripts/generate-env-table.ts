/**
 * Writes the README's table of environment variables (between `<!-- env-table:begin -->` and `<!-- env-table:end -->`)
 * from infra/env.ts. Run after adding or changing a variable:
 *   npm run env:generate          (write)
 *   npm run env:check             (exit 1 when the README's table is stale)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { envTable } from '../infra/env';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
const BEGIN = '<!-- env-table:begin (generated from infra/env.ts: npm run env:generate) -->';
const END = '<!-- env-table:end -->';

/** The README with its table block replaced by the generated one. */
export function withEnvTable(readme: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md: no ${BEGIN} … ${END} block`);
  return `${readme.slice(0, start)}${BEGIN}\n\n${envTable()}\n\n${readme.slice(end)}`;
}

async function main(args: string[]): Promise<void> {
  const current = await readFile(README, 'utf8');
  const next = withEnvTable(current);
  if (args.includes('--check')) {
    if (current !== next) {
      console.error('README.md: the table of environment variables is stale: run npm run env:generate');
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(README, next);
  console.log(`wrote the table of environment variables into ${README}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
