// A project's assets directory, as wrangler reads it: every file under it except those
// `.assetsignore` names (gitignore rules), held to Cloudflare's limits. `isolet deploy` hashes
// it into a manifest; `isolet dev` serves it from disk through the same rules as a server.

import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import ignore from 'ignore';
import { contentTypeOf, isAssetPath, MAX_ASSET_BYTES, MAX_ASSET_FILES, type AssetFile } from './manifest.ts';
import type { AssetSource, OpenedAsset } from './respond.ts';

export const ASSETS_IGNORE_FILE = '.assetsignore';
/**
 * Never served: the ignore file, and Cloudflare's `_headers` and `_redirects`, which configure
 * its asset server and are not files to serve (isolet does not apply them yet).
 */
const NOT_ASSETS = [ASSETS_IGNORE_FILE, '_headers', '_redirects'];
export const UNSUPPORTED_ASSET_FILES = ['_headers', '_redirects'];

/** A directory that cannot be deployed as it is; the message names the file and the fix. */
export class AssetsDirectoryError extends Error {
  override name = 'AssetsDirectoryError';
}

/** One file to upload: its manifest entry, and where it is on disk. */
export interface LocalAsset extends AssetFile {
  /** The path it is served at ("/img/logo.png"). */
  path: string;
  file: string;
}

/** Whether a path relative to the directory ("img/logo.png") is left out. */
export type IgnoreRule = (relativePath: string) => boolean;

export function assetsIgnore(dir: string): IgnoreRule {
  const rules = ignore().add(NOT_ASSETS);
  try {
    rules.add(readFileSync(join(dir, ASSETS_IGNORE_FILE), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return (path) => rules.ignores(path);
}

/**
 * Every file to serve, sorted by path, with its hash (SHA-256 of its bytes). `progress` is told
 * of each file hashed. Over 20,000 files or a file over 25 MiB is an AssetsDirectoryError.
 */
export async function readAssetsDirectory(dir: string, progress?: (done: number, total: number) => void): Promise<{ files: LocalAsset[]; unsupported: string[] }> {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (error) {
    throw new AssetsDirectoryError(`cannot read the assets directory ${dir}: ${(error as Error).message}. Fix: set [assets] directory to a folder that exists`);
  }
  const isIgnored = assetsIgnore(dir);
  const unsupported = new Set<string>();
  const found: { path: string; file: string; size: number }[] = [];
  for (const entry of entries) {
    if (entry.isDirectory()) continue;
    const file = join(entry.parentPath, entry.name);
    const relativePath = relative(dir, file).split(sep).join('/');
    if (UNSUPPORTED_ASSET_FILES.includes(relativePath)) unsupported.add(relativePath);
    if (isIgnored(relativePath)) continue;
    const info = await stat(file).catch(() => undefined); // follows links; a dangling one is skipped
    if (info === undefined || !info.isFile()) continue;
    const path = `/${relativePath}`;
    if (!isAssetPath(path)) throw new AssetsDirectoryError(`${relativePath}: this file name cannot be served (control characters). Fix: rename it, or list it in ${ASSETS_IGNORE_FILE}`);
    if (info.size > MAX_ASSET_BYTES) {
      throw new AssetsDirectoryError(`${relativePath} is ${(info.size / 1024 / 1024).toFixed(1)} MiB, over the limit of 25 MiB per asset. Fix: make it smaller, or list it in ${ASSETS_IGNORE_FILE}`);
    }
    found.push({ path, file, size: info.size });
    if (found.length > MAX_ASSET_FILES) {
      throw new AssetsDirectoryError(`${dir} has more than ${MAX_ASSET_FILES} files, the most a version may have. Fix: list what need not be served in ${ASSETS_IGNORE_FILE}`);
    }
  }
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const files: LocalAsset[] = [];
  for (const item of found) {
    files.push({ ...item, hash: await hashFile(item.file), contentType: contentTypeOf(item.path) });
    progress?.(files.length, found.length);
  }
  return { files, unsupported: [...unsupported].sort() };
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The directory as `isolet dev` serves it: looked up on disk for each request, so a file
 * written a moment ago is served, and `.assetsignore` read again when it changes.
 */
export class DiskAssets implements AssetSource {
  readonly #dir: string;
  #ignored: IgnoreRule;
  #ignoreStamp: number;

  constructor(dir: string) {
    this.#dir = dir;
    this.#ignoreStamp = this.#stamp();
    this.#ignored = assetsIgnore(dir);
  }

  readonly find = (path: string): string | undefined => {
    if (!isAssetPath(path)) return undefined;
    const stamp = this.#stamp();
    if (stamp !== this.#ignoreStamp) {
      this.#ignoreStamp = stamp;
      this.#ignored = assetsIgnore(this.#dir);
    }
    if (this.#ignored(path.slice(1))) return undefined;
    const file = join(this.#dir, ...path.slice(1).split('/'));
    try {
      return statSync(file).isFile() ? file : undefined;
    } catch {
      return undefined;
    }
  };

  async open(path: string): Promise<OpenedAsset | undefined> {
    const file = this.find(path);
    if (file === undefined) return undefined;
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      return undefined;
    }
    return { bytes, contentType: contentTypeOf(path), etag: createHash('sha256').update(bytes).digest('hex') };
  }

  #stamp(): number {
    try {
      return statSync(join(this.#dir, ASSETS_IGNORE_FILE)).mtimeMs;
    } catch {
      return 0;
    }
  }
}
