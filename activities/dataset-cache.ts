// The worker's dataset cache: blobs by SHA-256, dataset trees of hard links named by their manifest's hash, and
// the ETags of HTTP downloads. Any number of activities (in one process or several workers sharing the folder)
// may fill it at once: every entry is written under a private temporary name and renamed into place, a tree is
// trusted only once its `.complete` marker exists (written last, inside the tree, before the rename), and losing
// a race to another writer means using the winner's entry, never an error.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { DatasetFormat } from '../tensor/data';
import { safeRelativeName } from './names';

/** One file of a dataset: its name under the dataset root and where its bytes are now. */
export interface StagedFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** What the store keeps per dataset: enough for a heavy worker to rebuild the same tree. */
export interface DatasetManifest {
  format: DatasetFormat;
  source: string;
  files: { name: string; sha256: string; size: number }[];
}

const COMPLETE = '.complete';

/** A name no other writer uses: pid, time and 8 random bytes. */
const unique = () => `${process.pid}-${Date.now()}-${randomBytes(8).toString('hex')}`;

export class BlobCache {
  constructor(readonly dir: string) {}

  blobPath(sha256: string): string {
    return join(this.dir, 'blobs', sha256.slice(0, 2), sha256);
  }

  /** A fresh private path under `<cache>/tmp/` (its folder exists). */
  async tmpPath(): Promise<string> {
    const tmp = join(this.dir, 'tmp', `${unique()}.part`);
    await mkdir(dirname(tmp), { recursive: true });
    return tmp;
  }

  /** True when the blob is in the cache; a blob only ever appears complete (renamed into place). */
  async has(sha256: string): Promise<boolean> {
    return stat(this.blobPath(sha256)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** Moves a verified temporary file into the cache (atomic; a concurrent writer of the same blob is harmless). */
  async adopt(tmp: string, sha256: string): Promise<void> {
    const dest = this.blobPath(sha256);
    await mkdir(dirname(dest), { recursive: true });
    await rename(tmp, dest);
  }

  /** True for a file this cache made under its tmp folder (it may be moved rather than copied). */
  private ownsTmp(path: string): boolean {
    return path.startsWith(join(this.dir, 'tmp') + '/');
  }

  /** Copies a staged file into the cache unless its blob is there already. */
  async put(f: StagedFile): Promise<void> {
    if (await this.has(f.sha256)) {
      if (this.ownsTmp(f.path)) await rm(f.path, { force: true });
      return;
    }
    if (this.ownsTmp(f.path)) return this.adopt(f.path, f.sha256);
    const tmp = await this.tmpPath();
    await copyFile(f.path, tmp);
    await this.adopt(tmp, f.sha256);
  }

  /** The tree's folder when it is complete (its marker exists), else undefined. */
  async readyTree(hash: string): Promise<string | undefined> {
    const root = join(this.dir, 'datasets', hash);
    return stat(join(root, COMPLETE)).then(
      () => root,
      () => undefined,
    );
  }

  /**
   * The dataset folder for `manifest`, built from cached blobs (hard links, or copies across devices) in a
   * private folder that is renamed into place once its marker is written. Losing the rename to a concurrent
   * builder uses the winner's tree; a marker-less folder left by a crash is moved aside and rebuilt.
   */
  async tree(hash: string, manifest: DatasetManifest, attempt = 0): Promise<string> {
    const ready = await this.readyTree(hash);
    if (ready) return ready;
    const root = join(this.dir, 'datasets', hash);
    const tmp = join(this.dir, 'datasets', `.${hash}.${unique()}.part`);
    try {
      for (const f of manifest.files) {
        const dest = join(tmp, ...safeRelativeName(f.name, 'dataset manifest').split('/'));
        await mkdir(dirname(dest), { recursive: true });
        await link(this.blobPath(f.sha256), dest).catch(() => copyFile(this.blobPath(f.sha256), dest));
      }
      await mkdir(tmp, { recursive: true });
      await writeFile(join(tmp, COMPLETE), JSON.stringify({ files: manifest.files.length }));
      await rename(tmp, root);
      return root;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      const won = await this.readyTree(hash);
      if (won) return won;
      if (attempt >= 3) throw err;
      // A folder without a marker: an older writer's crash. Move it aside (atomic) and build again.
      const aside = join(this.dir, 'datasets', `.${hash}.${unique()}.stale`);
      await rename(root, aside).catch(() => undefined);
      await rm(aside, { recursive: true, force: true });
      return this.tree(hash, manifest, attempt + 1);
    }
  }

  /** What an earlier download of `url` answered (ETag, SHA-256, size), when its blob is still cached. */
  async remembered(url: URL): Promise<{ etag?: string; sha256: string; size: number } | undefined> {
    let known: { etag?: string; sha256?: unknown; size?: unknown } | undefined;
    try {
      known = JSON.parse(await readFile(this.memoPath(url), 'utf8'));
    } catch {
      return undefined;
    }
    if (typeof known?.sha256 !== 'string' || typeof known.size !== 'number') return undefined;
    if (!(await this.has(known.sha256))) return undefined;
    return { etag: typeof known.etag === 'string' ? known.etag : undefined, sha256: known.sha256, size: known.size };
  }

  /** Remembers what a download of `url` answered (atomic write). */
  async remember(url: URL, entry: { etag?: string; sha256: string; size: number }): Promise<void> {
    const memo = this.memoPath(url);
    await mkdir(dirname(memo), { recursive: true });
    const tmp = `${memo}.${unique()}.part`;
    await writeFile(tmp, JSON.stringify(entry));
    await rename(tmp, memo);
  }

  private memoPath(url: URL): string {
    return join(this.dir, 'http', `${createHash('sha256').update(url.href).digest('hex')}.json`);
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** The content address of a dataset tree: its format and every file's name and hash. */
export function treeHash(m: DatasetManifest): string {
  const h = createHash('sha256').update(`tempered-dataset-v1\n${m.format}\n`);
  for (const f of m.files) h.update(`${f.sha256}  ${f.name}\n`);
  return h.digest('hex');
}

/** Where the object store keeps a blob. */
export const blobKey = (sha256: string) => `blobs/sha256/${sha256}`;
export const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
export const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
