import { open, readFile, stat } from 'node:fs/promises';
import buffer from 'node:buffer';
import { constants, createGunzip, gunzipSync } from 'node:zlib';
import { DatasetError } from './dataset';

/** True when the bytes start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Reads a whole file, gunzipping it when its first bytes say it is gzip (whatever its extension). The content
 * may not exceed `maxBytes` (what the caller expects: an IDX header's dimensions, a gzip trailer's length):
 * inflation stops at that many bytes, so a small gzip bomb is refused without inflating it.
 */
export async function readMaybeGzip(file: string, maxBytes: number): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new DatasetError(file, `cannot read file (${(err as Error).message})`, { cause: err });
  }
  if (!isGzip(raw)) return raw;
  try {
    // One byte over the cap tells "more than expected" from "exactly what was expected".
    return gunzipSync(raw, { maxOutputLength: Math.max(1, Math.min(maxBytes + 1, buffer.kMaxLength)) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DatasetError(file, `decompresses to more than the ${maxBytes} bytes expected; refused`, { cause: err });
    }
    throw new DatasetError(
      file,
      `starts with the gzip magic number but does not decompress (${(err as Error).message})`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The first `n` bytes of a file's content (decompressed when it is gzip), reading only a small prefix of the
 * file: for estimating a dataset's size before loading it. Returns fewer bytes when the content is shorter.
 */
export async function readHead(file: string, n: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new DatasetError(file, `cannot open file (${(err as Error).message})`, { cause: err });
  }
  try {
    const size = Math.min(Math.max(n, 64 * 1024), (await handle.stat()).size);
    const buf = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buf, 0, size, 0);
    const prefix = buf.subarray(0, bytesRead);
    if (!isGzip(prefix)) return prefix.subarray(0, n);
    try {
      return await gunzipHead(prefix, n);
    } catch (err) {
      throw new DatasetError(
        file,
        `starts with the gzip magic number but does not decompress (${(err as Error).message})`,
        {
          cause: err,
        },
      );
    }
  } finally {
    await handle.close();
  }
}

/** Size in bytes of a file, or undefined when it does not exist. */
export async function fileSize(file: string): Promise<number | undefined> {
  try {
    const s = await stat(file);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** The first of `candidates` that exists as a file, or undefined. */
export async function firstExisting(candidates: readonly string[]): Promise<string | undefined> {
  for (const c of candidates) if ((await fileSize(c)) !== undefined) return c;
  return undefined;
}

/**
 * Size of a file's content: its length, or for gzip the uncompressed length from the trailer (ISIZE, modulo
 * 2^32), read without decompressing.
 */
export async function contentSize(file: string): Promise<number> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new DatasetError(file, `cannot open file (${(err as Error).message})`, { cause: err });
  }
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(2);
    await handle.read(head, 0, 2, 0);
    if (!isGzip(head) || size < 18) return size;
    const tail = Buffer.alloc(4);
    await handle.read(tail, 0, 4, size - 4);
    return tail.readUInt32LE(0);
  } finally {
    await handle.close();
  }
}

/**
 * The first `n` inflated bytes of a gzip prefix, inflating in small chunks and stopping there: a prefix of a gzip
 * bomb (64 KiB of compressed zeros is about 64 MiB) never inflates whole.
 */
function gunzipHead(prefix: Buffer, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gunzip = createGunzip({ finishFlush: constants.Z_SYNC_FLUSH, chunkSize: 16 * 1024 });
    const out: Buffer[] = [];
    let got = 0;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      gunzip.destroy();
      resolve(Buffer.concat(out).subarray(0, n));
    };
    gunzip.on('data', (chunk: Buffer) => {
      out.push(chunk);
      got += chunk.length;
      if (got >= n) finish();
    });
    gunzip.on('end', finish);
    gunzip.on('error', (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
    gunzip.end(prefix);
  });
}
