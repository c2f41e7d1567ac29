#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so the package works from a checkout without a build step. This file is
// the only entry: it calls main() itself, whatever path npm linked it under (node_modules/.bin, a global prefix).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
