// Where a worker may fetch datasets from. A spec is written by whoever can start a run; the worker holds keys and
// a network position they may not. So a source is checked against the worker's allow-list (infra/config.ts reads
// it from TEMPERED_DATASET_ROOTS, TEMPERED_DATASET_BUCKETS, TEMPERED_DATASET_HOSTS) before anything is read.
import { lookup } from 'node:dns/promises';
import { realpath } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import { resolve, sep } from 'node:path';
import { Failure, fail } from '../schemas/failures';
import { sourceKind } from '../schemas/spec';
import { parseS3Uri } from '../storage/object-store';

export interface SourcePolicy {
  /** Local folders (and everything under them) a dataset may be read from. */
  roots: string[];
  /** Buckets a dataset may be read from; `*` allows every bucket the worker's keys reach. */
  buckets: string[];
  /**
   * HTTP(S) hosts (`host` or `host:port`) a dataset may be downloaded from; `*` allows any host whose addresses
   * are public. Loopback, link-local, private and other special addresses are refused unless the host is
   * listed by name.
   */
  hosts: string[];
  /** Seconds to wait for a connection and the response headers, and between two chunks of a body. */
  httpTimeoutS: number;
}

/** Addresses an http source may not reach unless its host is listed by name (cloud metadata, the LAN, us). */
const SPECIAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  SPECIAL.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 127],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  SPECIAL.addSubnet(net, bits, 'ipv6');
}

/** True for an address in a loopback, link-local, private, shared, multicast or reserved range. */
export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return SPECIAL.check(mapped[1], 'ipv4');
    return SPECIAL.check(address, 'ipv6');
  }
  return SPECIAL.check(address, 'ipv4');
}

const refuse = (message: string) => fail(Failure.AccessDenied, message);

/** Throws AccessDenied unless `source` lies inside the policy's roots, buckets or hosts. */
export async function checkSource(policy: SourcePolicy, source: string): Promise<void> {
  const kind = sourceKind(source);
  if (kind === 'local') return checkLocal(policy, source);
  if (kind === 's3') {
    const { bucket } = parseS3Uri(source, { field: 'dataset.source', requireKey: false });
    if (!policy.buckets.includes('*') && !policy.buckets.includes(bucket)) {
      throw refuse(
        `dataset.source ${source}: bucket ${bucket} is not one this worker reads datasets from ` +
          `(TEMPERED_DATASET_BUCKETS=${policy.buckets.join(',') || '(none)'})`,
      );
    }
    return;
  }
  await checkUrl(policy, new URL(source));
}

async function checkLocal(policy: SourcePolicy, source: string): Promise<void> {
  const real = await realpath(resolve(source)).catch(() => resolve(source));
  for (const root of policy.roots) {
    const r = await realpath(resolve(root)).catch(() => resolve(root));
    if (real === r || real.startsWith(r.endsWith(sep) ? r : r + sep)) return;
  }
  throw refuse(
    `dataset.source ${source}${real !== source ? ` (${real})` : ''} is outside the folders this worker reads ` +
      `datasets from (TEMPERED_DATASET_ROOTS=${policy.roots.join(':') || '(none)'})`,
  );
}

/** Checks one URL (the source, or a redirect's target): scheme, no credentials, an allowed host and address. */
export async function checkUrl(policy: SourcePolicy, url: URL): Promise<void> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse(`${url.href}: only http and https`);
  if (url.username || url.password) throw refuse(`${url.origin}: credentials in a URL are refused`);
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const listed = policy.hosts.some((h) => h.toLowerCase() === host || h.toLowerCase() === url.host.toLowerCase());
  if (!listed && !policy.hosts.includes('*')) {
    throw refuse(
      `dataset.source host ${url.host} is not one this worker downloads from ` +
        `(TEMPERED_DATASET_HOSTS=${policy.hosts.join(',') || '(none)'})`,
    );
  }
  if (listed) return;
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
  const special = addresses.filter(isSpecialAddress);
  if (special.length > 0) {
    throw refuse(
      `dataset.source host ${url.host} resolves to ${special.join(', ')}: loopback, link-local and private ` +
        `addresses are refused unless the host is listed in TEMPERED_DATASET_HOSTS`,
    );
  }
}
