// `tempered config [--json]`: the effective configuration, every environment variable tempered reads (its value,
// from the environment or the default) and the connections they resolve to. Secrets are masked.
import { resolveConnections, resolveHome } from '../infra/config';
import { effectiveEnv } from '../infra/env';
import { formatS3Endpoint, maskSecret } from '../storage/connection';
import { defineCommand } from './command';
import { print, printJson } from './common';

export const configCommand = defineCommand({
  name: 'config',
  summary: 'print the effective configuration (environment variables, connections), secrets masked',
  usage: 'tempered config [--json]',
  help: [
    '',
    'Lists every environment variable tempered reads with its effective value and where it comes from (env,',
    'default or unset), then the Temporal and S3 connections they resolve to (or why they do not). Secrets',
    'are masked. A variable with a bad value is an error naming it (exit 2).',
    '',
    '  --json           print { variables: [...], connections } as JSON',
  ],
  json: true,
  async run({ json }) {
    const variables = effectiveEnv();
    let connections: Record<string, unknown>;
    try {
      const c = resolveConnections();
      connections = {
        temporal: { ...c.temporal, from: c.source.temporal },
        s3: {
          endpoint: formatS3Endpoint(c.s3),
          region: c.s3.region,
          accessKey: maskSecret(c.s3.accessKey),
          secretKey: maskSecret(c.s3.secretKey),
          from: c.source.s3,
        },
      };
    } catch (err) {
      connections = { error: (err as Error).message };
    }
    connections.home = resolveHome();
    if (json) {
      printJson({ variables, connections });
      return 0;
    }
    const width = Math.max(...variables.map((v) => v.name.length));
    const shown = (v: (typeof variables)[number]) => (v.value === '' ? '(empty)' : v.value);
    const lines = variables
      .filter((v) => v.source !== 'unset')
      .map((v) => `${v.name.padEnd(width)}  ${shown(v)}${v.source === 'default' ? '  (default)' : ''}`);
    const unset = variables.filter((v) => v.source === 'unset').map((v) => v.name);
    const t = connections.temporal as { address: string; namespace: string; from: string } | undefined;
    const s3 = connections.s3 as { endpoint: string; region: string; accessKey: string; from: string } | undefined;
    print(
      [
        ...lines,
        `unset: ${unset.join(' ')}`,
        '',
        `home      ${connections.home as string}`,
        ...[
          t && `temporal  ${t.address}  namespace ${t.namespace}  (from ${t.from})`,
          s3 && `s3        ${s3.endpoint}  region ${s3.region}  access key ${s3.accessKey}  (from ${s3.from})`,
          connections.error ? `connections: ${connections.error as string}` : undefined,
        ].filter((l): l is string => !!l),
      ].join('\n'),
    );
    return 0;
  },
});
