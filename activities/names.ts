import { posix } from 'node:path';

/**
 * A dataset file's name relative to the dataset root, as it arrives from a spec, an S3 listing or a URL list.
 * Returns the normalised posix path, or throws naming the offending value: absolute paths, `..` segments,
 * backslashes and empty segments could write outside the cache.
 */
export function safeRelativeName(name: string, where: string): string {
  if (name.length === 0 || name.length > 1024) throw new UnsafeNameError(`${where}: empty or overlong file name`);
  if (name.includes('\\') || name.includes('\0')) {
    throw new UnsafeNameError(`${where}: file name ${JSON.stringify(name)} contains a backslash or NUL`);
  }
  if (name.startsWith('/')) throw new UnsafeNameError(`${where}: file name ${JSON.stringify(name)} is absolute`);
  const segments = name.split('/');
  if (segments.some((s) => s === '..' || s === '.' || s === '')) {
    throw new UnsafeNameError(
      `${where}: file name ${JSON.stringify(name)} has a '..', '.' or empty segment (path traversal is refused)`,
    );
  }
  return posix.normalize(name);
}

export class UnsafeNameError extends Error {
  override name = 'UnsafeNameError';
}

/** The object-store prefix of one workflow execution's working files (checkpoints, models, examples). */
export function runPrefix(workflowId: string, temporalRunId: string): string {
  return `runs/${workflowId}/${temporalRunId}`;
}
