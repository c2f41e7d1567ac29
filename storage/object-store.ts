import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Client } from 'minio';
import type { S3Connection } from './connection';
import { isStaleConnection, ObjectNotFoundError, ObjectStoreError, toStoreError } from './errors';

export * from './connection';
export * from './errors';

/** One object as `list` reports it. */
export interface ObjectEntry {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

/** What `stat` reports; `meta` holds user metadata (lower-case names, no `x-amz-meta-` prefix). */
export interface ObjectStat {
  size: number;
  etag: string;
  lastModified: Date;
  contentType?: string;
  meta: Record<string, string>;
}

/** A bucket and key, as `parseS3Uri` returns them. */
export interface S3Location {
  bucket: string;
  key: string;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses `s3://bucket/some/key`. With `requireKey: false`, `s3://bucket` and `s3://bucket/prefix/` are accepted
 * too (the key is then `''` or the prefix). Errors say what was expected and name `field` (default `uri`).
 */
export function parseS3Uri(uri: string, options: { requireKey?: boolean; field?: string } = {}): S3Location {
  const { requireKey = true, field = 'uri' } = options;
  if (typeof uri !== 'string' || !uri.startsWith('s3://')) {
    throw new Error(`${field}: expected an S3 URI like s3://bucket/key, got ${JSON.stringify(uri)}`);
  }
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const key = slash === -1 ? '' : rest.slice(slash + 1);
  if (!BUCKET_NAME.test(bucket) || bucket.includes('..')) {
    throw new Error(
      `${field}: bucket ${JSON.stringify(bucket)} in ${uri} is not a valid S3 bucket name ` +
        '(3-63 characters: lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit)',
    );
  }
  if (requireKey && (key === '' || key.endsWith('/'))) {
    throw new Error(`${field}: expected an object key after the bucket in ${uri} (s3://${bucket}/<key>)`);
  }
  if (key.startsWith('/')) throw new Error(`${field}: the key in ${uri} starts with '/', remove the double slash`);
  return { bucket, key };
}

/** `s3://bucket/key` from its parts (the inverse of {@link parseS3Uri}). */
export function formatS3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/**
 * A thin adapter over the minio client. Every method throws only {@link ObjectStoreError}s: a missing bucket or
 * key is an {@link ObjectNotFoundError}; a store that does not answer (refused, reset, timeout, 5xx) is an
 * `ObjectStoreUnavailableError` whose `transient` is true, so an activity may simply let Temporal retry it.
 */
export class ObjectStore {
  readonly client: Client;

  constructor(readonly connection: S3Connection) {
    this.client = new Client({
      endPoint: connection.endPoint,
      port: connection.port,
      useSSL: connection.useSSL,
      accessKey: connection.accessKey,
      secretKey: connection.secretKey,
      region: connection.region,
      // Retrying is the caller's business (Temporal retries activities); the client's own retry only logs noise.
      retryOptions: { disableRetry: true },
    });
  }

  /**
   * Runs one request, and once more when it failed on a connection the store had already closed (a kept-alive
   * socket reused after the server's idle timeout: EPIPE, ECONNRESET, "socket hang up"). The broken socket is
   * gone by then, so the second try opens a fresh one. Every request here is idempotent: a whole-object PUT,
   * GET, list, stat, delete.
   */
  private async request<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isStaleConnection(err)) throw err;
      return fn();
    }
  }

  /** Creates the bucket when it does not exist; succeeds when it does. */
  async ensureBucket(bucket: string): Promise<void> {
    try {
      if (await this.request(() => this.client.bucketExists(bucket))) return;
      await this.request(() => this.client.makeBucket(bucket, this.connection.region));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'BucketAlreadyOwnedByYou' || code === 'BucketAlreadyExists') return;
      throw toStoreError(err, 'ensureBucket', bucket);
    }
  }

  async putBytes(bucket: string, key: string, bytes: Uint8Array, meta: Record<string, string> = {}): Promise<void> {
    const body = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    try {
      await this.request(() =>
        this.client.putObject(bucket, key, body, body.length, { 'Content-Type': 'application/octet-stream', ...meta }),
      );
    } catch (err) {
      throw toStoreError(err, 'putBytes', bucket, key);
    }
  }

  async getBytes(bucket: string, key: string): Promise<Buffer> {
    try {
      return await this.request(async () => {
        const stream = await this.client.getObject(bucket, key);
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      });
    } catch (err) {
      throw toStoreError(err, 'getBytes', bucket, key);
    }
  }

  async putJson(bucket: string, key: string, value: unknown, meta: Record<string, string> = {}): Promise<void> {
    const text = JSON.stringify(value);
    if (text === undefined) throw new ObjectStoreError(`putJson s3://${bucket}/${key}: value is not JSON-serialisable`);
    await this.putBytes(bucket, key, Buffer.from(text, 'utf8'), { 'Content-Type': 'application/json', ...meta });
  }

  /** Reads and parses a JSON object; the caller validates its shape (e.g. with a zod schema). */
  async getJson<T = unknown>(bucket: string, key: string): Promise<T> {
    const bytes = await this.getBytes(bucket, key);
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (err) {
      throw new ObjectStoreError(`s3://${bucket}/${key}: expected JSON, ${(err as Error).message}`, { cause: err });
    }
  }

  async stat(bucket: string, key: string): Promise<ObjectStat> {
    try {
      const s = await this.request(() => this.client.statObject(bucket, key));
      const meta: Record<string, string> = {};
      let contentType: string | undefined;
      for (const [name, value] of Object.entries(s.metaData ?? {})) {
        if (name.toLowerCase() === 'content-type') contentType = String(value);
        else meta[name.toLowerCase()] = String(value);
      }
      return { size: s.size, etag: s.etag, lastModified: s.lastModified, contentType, meta };
    } catch (err) {
      throw toStoreError(err, 'stat', bucket, key);
    }
  }

  /** True when the object exists; a missing bucket also answers false. */
  async exists(bucket: string, key: string): Promise<boolean> {
    try {
      await this.stat(bucket, key);
      return true;
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return false;
      throw err;
    }
  }

  /** Every object whose key starts with `prefix` (recursive), sorted by key. */
  async list(bucket: string, prefix = ''): Promise<ObjectEntry[]> {
    let out: ObjectEntry[];
    try {
      out = await this.request(async () => {
        const entries: ObjectEntry[] = [];
        for await (const item of this.client.listObjectsV2(bucket, prefix, true)) {
          if (item.name === undefined) continue;
          entries.push({ key: item.name, size: item.size, etag: item.etag, lastModified: item.lastModified });
        }
        return entries;
      });
    } catch (err) {
      throw toStoreError(err, 'list', bucket, prefix);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Deletes one object; deleting a missing key succeeds (S3 semantics). */
  async remove(bucket: string, key: string): Promise<void> {
    try {
      await this.request(() => this.client.removeObject(bucket, key));
    } catch (err) {
      throw toStoreError(err, 'remove', bucket, key);
    }
  }

  /** Uploads a file from disk, streaming (multipart for big files). */
  async putFile(bucket: string, key: string, path: string, meta: Record<string, string> = {}): Promise<void> {
    try {
      await this.request(() =>
        this.client.fPutObject(bucket, key, path, { 'Content-Type': 'application/octet-stream', ...meta }),
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') {
        throw new ObjectStoreError(`putFile s3://${bucket}/${key}: local file ${path} does not exist`, {
          code: 'ENOENT',
          cause: err,
        });
      }
      throw toStoreError(err, 'putFile', bucket, key);
    }
  }

  /**
   * Downloads an object to `path`, streaming to disk. The client writes a `.part.minio` file next to it and
   * renames it at the end, so a reader never sees half a file.
   */
  async getFile(bucket: string, key: string, path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    try {
      await this.request(() => this.client.fGetObject(bucket, key, path));
    } catch (err) {
      throw toStoreError(err, 'getFile', bucket, key);
    }
  }
}

/** The adapter for one store. Creating it does no I/O. */
export function createObjectStore(conn: S3Connection): ObjectStore {
  for (const field of ['endPoint', 'accessKey', 'secretKey', 'region'] as const) {
    if (typeof conn[field] !== 'string' || conn[field] === '') {
      throw new Error(`S3 connection: ${field} must be a non-empty string`);
    }
  }
  if (!Number.isInteger(conn.port) || conn.port < 1 || conn.port > 65535) {
    throw new Error(`S3 connection: port must be an integer from 1 to 65535, got ${String(conn.port)}`);
  }
  return new ObjectStore(conn);
}
