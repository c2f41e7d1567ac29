/**
 * The object store's failure vocabulary. Activities branch on `name` (or `instanceof`), never on message text:
 * - `ObjectNotFound`: the bucket or key does not exist (permanent for that key);
 * - `ObjectStoreUnavailable`: the store did not answer or answered 5xx/throttling (transient: retry);
 * - `ObjectStoreDenied`: credentials refused (permanent until someone fixes the keys);
 * - `ObjectStoreError`: anything else the store refused (permanent).
 */
export class ObjectStoreError extends Error {
  override name: string = 'ObjectStoreError';
  /** True when trying again later may succeed. */
  readonly transient: boolean = false;
  /** The S3 error code or Node errno (`NoSuchKey`, `ECONNREFUSED`), when known. */
  readonly code?: string;
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code;
  }
}

export class ObjectNotFoundError extends ObjectStoreError {
  override name = 'ObjectNotFound';
  constructor(
    readonly bucket: string,
    readonly key: string | undefined,
    options: { code?: string; cause?: unknown } = {},
  ) {
    super(
      key === undefined || options.code === 'NoSuchBucket'
        ? `bucket ${bucket} does not exist${key === undefined ? '' : ` (reading s3://${bucket}/${key})`}`
        : `s3://${bucket}/${key} does not exist`,
      options,
    );
  }
}

export class ObjectStoreUnavailableError extends ObjectStoreError {
  override name = 'ObjectStoreUnavailable';
  override readonly transient = true;
}

export class ObjectStoreDeniedError extends ObjectStoreError {
  override name = 'ObjectStoreDenied';
}

const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'NoSuchObject']);
const DENIED_CODES = new Set([
  'AccessDenied',
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'InvalidToken',
  'ExpiredToken',
]);
const TRANSIENT_S3_CODES = new Set([
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'OperationAborted',
  'XMinioServerNotInitialized',
]);
const TRANSIENT_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/**
 * True when a request failed because its connection was already closed by the store: a kept-alive socket the
 * server dropped after its idle timeout, noticed only when written to. Worth one immediate retry on a new socket.
 */
export function isStaleConnection(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (e?.code === 'EPIPE' || e?.code === 'ECONNRESET') return true;
  return typeof e?.message === 'string' && /socket hang up/i.test(e.message);
}

/** True when `err` (ours or a raw client error) is worth retrying. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ObjectStoreError) return err.transient;
  return classify(err) === 'transient';
}

type Kind = 'notFound' | 'denied' | 'transient' | 'other';

function classify(err: unknown): Kind {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : '';
  if (code && NOT_FOUND_CODES.has(code)) return 'notFound';
  if (code && DENIED_CODES.has(code)) return 'denied';
  if (code && (TRANSIENT_S3_CODES.has(code) || TRANSIENT_ERRNOS.has(code))) return 'transient';
  // The minio client turns retryable statuses (408, 429, 5xx) into a plain Error with this text.
  if (/Retryable HTTP status: (408|429|499|5\d\d)/.test(message)) return 'transient';
  if (/socket hang up|network timeout|timed? ?out/i.test(message)) return 'transient';
  return 'other';
}

/** Wraps a raw minio/Node error into the vocabulary above, naming the operation and the object. */
export function toStoreError(err: unknown, op: string, bucket: string, key?: string): ObjectStoreError {
  if (err instanceof ObjectStoreError) return err;
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const detail = typeof e?.message === 'string' ? e.message : String(err);
  const where = key === undefined ? `s3://${bucket}` : `s3://${bucket}/${key}`;
  switch (classify(err)) {
    case 'notFound':
      return new ObjectNotFoundError(bucket, key, { code, cause: err });
    case 'denied':
      return new ObjectStoreDeniedError(`${op} ${where}: credentials refused (${code}): ${detail}`, {
        code,
        cause: err,
      });
    case 'transient':
      return new ObjectStoreUnavailableError(`${op} ${where}: store unavailable (${code ?? 'error'}): ${detail}`, {
        code,
        cause: err,
      });
    default:
      return new ObjectStoreError(`${op} ${where} failed${code ? ` (${code})` : ''}: ${detail}`, { code, cause: err });
  }
}
