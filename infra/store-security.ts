// The embedded store's own doors. `weed mini` opens HTTP and gRPC ports for its master, volume server, filer,
// S3 gateway and admin beside the S3 API; without security settings each of them reads and writes every object
// with no key at all. Here: a `security.toml` (read by weed from its working directory, the store folder) with
// JWT signing keys for filer and volume reads and writes, and mutual TLS on every gRPC port (a CA and one
// node certificate, made with `openssl`, kept beside it). With `-disableHttp` the master and filer HTTP ports
// answer nothing; what remains reachable without a key answers 401/404 or refuses the handshake.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The gRPC roles weed reads a `[grpc.<role>]` certificate for (servers, and `client` for its own calls). */
const GRPC_ROLES = ['master', 'volume', 'filer', 's3', 'admin', 'worker', 'msg_broker', 'msg_agent', 'client'];

/** Where the store's security files live under the store folder (`<home>/s3`). */
export function storeSecurityPaths(s3Dir: string) {
  const tls = join(s3Dir, 'tls');
  return {
    /** weed reads `./security.toml` first; the store folder is its working directory. */
    toml: join(s3Dir, 'security.toml'),
    tls,
    caKey: join(tls, 'ca.key'),
    caCert: join(tls, 'ca.crt'),
    nodeKey: join(tls, 'node.key'),
    nodeCsr: join(tls, 'node.csr'),
    nodeCert: join(tls, 'node.crt'),
    ext: join(tls, 'node.ext'),
  };
}

function openssl(args: string[], what: string): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-2).join(' ');
    throw new Error(
      `could not ${what} for the embedded store's gRPC ports (openssl ${args[0]}): ${why}; ` +
        `install openssl, or point S3_ENDPOINT at an S3 store you run yourself`,
    );
  }
}

/** A fresh CA and node certificate (EC P-256, 10 years) for weed's gRPC mutual TLS; private keys mode 0600. */
function writeCertificates(p: ReturnType<typeof storeSecurityPaths>): void {
  rmSync(p.tls, { recursive: true, force: true });
  mkdirSync(p.tls, { recursive: true, mode: 0o700 });
  chmodSync(p.tls, 0o700);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p.caKey], 'make a CA key');
  openssl(
    ['req', '-x509', '-new', '-key', p.caKey, '-subj', '/CN=tempered-store-ca', '-days', '3650', '-out', p.caCert],
    'make a CA certificate',
  );
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p.nodeKey], 'make a node key');
  openssl(['req', '-new', '-key', p.nodeKey, '-subj', '/CN=tempered-store', '-out', p.nodeCsr], 'make a CSR');
  writeFileSync(p.ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(
    ['x509', '-req', '-in', p.nodeCsr, '-CA', p.caCert, '-CAkey', p.caKey, '-CAcreateserial'].concat([
      '-days',
      '3650',
      '-extfile',
      p.ext,
      '-out',
      p.nodeCert,
    ]),
    'sign the node certificate',
  );
  for (const key of [p.caKey, p.nodeKey]) chmodSync(key, 0o600);
}

const tomlString = (s: string) => JSON.stringify(s);

/** The `security.toml` text: JWT keys for filer and volume reads and writes, no UIs, mTLS on every gRPC role. */
export function securityToml(
  keys: Record<'write' | 'read' | 'filerWrite' | 'filerRead', string>,
  p: ReturnType<typeof storeSecurityPaths>,
): string {
  const jwt = (section: string, key: string) => `[${section}]\nkey = ${tomlString(key)}\nexpires_after_seconds = 10\n`;
  return [
    '# Written by tempered when it starts the embedded store; regenerated at every start. Do not edit.',
    jwt('jwt.signing', keys.write),
    jwt('jwt.signing.read', keys.read),
    jwt('jwt.filer_signing', keys.filerWrite),
    jwt('jwt.filer_signing.read', keys.filerRead),
    '[access]\nui = false\n',
    '[filer.expose_directory_metadata]\nenabled = false\n',
    `[grpc]\nca = ${tomlString(p.caCert)}\n`,
    ...GRPC_ROLES.map((role) => `[grpc.${role}]\ncert = ${tomlString(p.nodeCert)}\nkey = ${tomlString(p.nodeKey)}\n`),
  ].join('\n');
}

/**
 * Writes the store's security settings under `s3Dir` (fresh keys and certificates each time: nothing stored
 * depends on them). The toml and private keys are mode 0600, the tls folder 0700.
 */
export function writeStoreSecurity(s3Dir: string): ReturnType<typeof storeSecurityPaths> {
  const p = storeSecurityPaths(s3Dir);
  mkdirSync(s3Dir, { recursive: true });
  writeCertificates(p);
  const key = () => randomBytes(32).toString('base64url');
  rmSync(p.toml, { force: true });
  writeFileSync(p.toml, securityToml({ write: key(), read: key(), filerWrite: key(), filerRead: key() }, p), {
    mode: 0o600,
  });
  chmodSync(p.toml, 0o600);
  return p;
}

/** Flags that close weed's HTTP doors which no key guards (master and filer HTTP; S3 goes through gRPC). */
export const WEED_LOCKDOWN_ARGS = ['-disableHttp'];
