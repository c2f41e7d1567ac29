/** Where an S3-compatible store answers and how to sign requests to it. */
export interface S3Connection {
  /** Host name or IP, without scheme or port. */
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  /** SeaweedFS answers an empty GetBucketLocation, so the region is always given explicitly. */
  region: string;
}

export const DEFAULT_S3_REGION = 'us-east-1';

/**
 * Parses an endpoint URL such as `http://127.0.0.1:18333` into the parts the minio client takes.
 * A missing port means 80 for http and 443 for https. Paths other than `/` are refused (the minio client
 * cannot talk to an S3 store mounted under a path).
 */
export function parseS3Endpoint(
  url: string,
  field = 'S3_ENDPOINT',
): Pick<S3Connection, 'endPoint' | 'port' | 'useSSL'> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${field}: expected a URL like http://127.0.0.1:18333, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`${field}: expected an http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.pathname !== '/' && parsed.pathname !== '') {
    throw new Error(`${field}: expected no path after the host, got ${JSON.stringify(parsed.pathname)} in ${url}`);
  }
  if (parsed.username || parsed.password) {
    throw new Error(`${field}: put credentials in S3_ACCESS_KEY / S3_SECRET_KEY, not in the URL`);
  }
  const useSSL = parsed.protocol === 'https:';
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { endPoint: host, port: parsed.port ? Number(parsed.port) : useSSL ? 443 : 80, useSSL };
}

/** The inverse of {@link parseS3Endpoint}: `http://127.0.0.1:18333`. */
export function formatS3Endpoint(conn: Pick<S3Connection, 'endPoint' | 'port' | 'useSSL'>): string {
  const host = conn.endPoint.includes(':') ? `[${conn.endPoint}]` : conn.endPoint;
  return `${conn.useSSL ? 'https' : 'http'}://${host}:${conn.port}`;
}

/** Shows the first 4 characters of a secret and hides the rest, for logs and `status` output. */
export function maskSecret(secret: string): string {
  if (secret.length <= 4) return '****';
  return `${secret.slice(0, 4)}${'*'.repeat(Math.min(12, secret.length - 4))}`;
}
