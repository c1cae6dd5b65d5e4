// A worker's static assets as a version holds them: a manifest from each file's path to its
// content hash, size and content type, and the rules for serving them (wrangler's `[assets]`).
// The bytes live apart, stored once per account under their hash; a manifest is part of its
// version, and as immutable.

import mime from 'mime';

/** What html_handling does with `/page`, `/page/`, `/page.html` and `/page/index.html`. */
export type HtmlHandling = 'auto-trailing-slash' | 'force-trailing-slash' | 'drop-trailing-slash' | 'none';
/** What a path that matches no file gets: nothing (the worker, or a 404), the SPA's /index.html, or the nearest 404.html. */
export type NotFoundHandling = 'none' | 'single-page-application' | '404-page';

export const HTML_HANDLINGS: readonly HtmlHandling[] = ['auto-trailing-slash', 'force-trailing-slash', 'drop-trailing-slash', 'none'];
export const NOT_FOUND_HANDLINGS: readonly NotFoundHandling[] = ['none', 'single-page-application', '404-page'];

/** One file: its SHA-256 (hex, the ETag), bytes and Content-Type. */
export interface AssetFile {
  hash: string;
  size: number;
  contentType: string;
}

/** How assets are served; absent fields are Cloudflare's defaults. */
export interface AssetsConfig {
  htmlHandling?: HtmlHandling;
  notFoundHandling?: NotFoundHandling;
  /** The worker runs for every request; assets are reached only through the binding. */
  runWorkerFirst?: boolean;
}

/** `WorkerContent.assets`: the files by path ("/index.html"), and the config. */
export interface AssetsContent extends AssetsConfig {
  manifest: Record<string, AssetFile>;
}

/** Cloudflare's limits: 25 MiB per file, 20,000 files per version. */
export const MAX_ASSET_BYTES = 25 * 1024 * 1024;
export const MAX_ASSET_FILES = 20_000;

const HASH = /^[0-9a-f]{64}$/;
/** A Content-Type goes into a header: visible ASCII and spaces only, never CR or LF. */
const CONTENT_TYPE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;
const MAX_PATH = 1024;
const FIELDS = new Set(['manifest', 'htmlHandling', 'notFoundHandling', 'runWorkerFirst']);

export function isAssetHash(value: unknown): value is string {
  return typeof value === 'string' && HASH.test(value);
}

/** The Content-Type a file is served with, from its name, as wrangler gives it (text with charset=utf-8). */
export function contentTypeOf(path: string): string {
  const type = mime.getType(path) ?? 'application/octet-stream';
  return type.startsWith('text/') && !type.includes('charset') ? `${type}; charset=utf-8` : type;
}

/**
 * Whether a manifest path is one a request can name: "/" then segments, none empty, "." or
 * "..", no control characters. Paths are stored decoded (as on disk), compared with the request's
 * decoded path.
 */
export function isAssetPath(path: string): boolean {
  if (path.length < 2 || path.length > MAX_PATH || path[0] !== '/') return false;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) return false;
  for (const segment of path.slice(1).split('/')) if (segment === '' || segment === '.' || segment === '..') return false;
  return true;
}

/** Checks an `assets` value from a deployment (hostile JSON); the Error's message says what to fix. */
export function parseAssetsContent(value: unknown): AssetsContent {
  if (!isObject(value)) throw new Error('`assets` must be an object: {"manifest": {"/index.html": {"hash", "size", "contentType"}}, "htmlHandling"?, "notFoundHandling"?, "runWorkerFirst"?}.');
  for (const key of Object.keys(value)) {
    if (!FIELDS.has(key)) throw new Error(`Unknown field 'assets.${key}': the fields are ${[...FIELDS].join(', ')}.`);
  }
  const content: AssetsContent = { manifest: {} };
  if (value.htmlHandling !== undefined) {
    if (!HTML_HANDLINGS.includes(value.htmlHandling as HtmlHandling)) throw new Error(`\`assets.htmlHandling\` must be one of ${HTML_HANDLINGS.join(', ')}.`);
    content.htmlHandling = value.htmlHandling as HtmlHandling;
  }
  if (value.notFoundHandling !== undefined) {
    if (!NOT_FOUND_HANDLINGS.includes(value.notFoundHandling as NotFoundHandling)) throw new Error(`\`assets.notFoundHandling\` must be one of ${NOT_FOUND_HANDLINGS.join(', ')}.`);
    content.notFoundHandling = value.notFoundHandling as NotFoundHandling;
  }
  if (value.runWorkerFirst !== undefined) {
    if (typeof value.runWorkerFirst !== 'boolean') throw new Error('`assets.runWorkerFirst` must be true or false.');
    content.runWorkerFirst = value.runWorkerFirst;
  }
  const manifest = value.manifest;
  if (!isObject(manifest)) throw new Error('`assets.manifest` must be an object of paths ("/index.html") to {"hash", "size", "contentType"}.');
  const paths = Object.keys(manifest);
  if (paths.length > MAX_ASSET_FILES) throw new Error(`\`assets.manifest\` has ${paths.length} files, over the limit of ${MAX_ASSET_FILES}: leave some out with .assetsignore.`);
  for (const path of paths) {
    if (!isAssetPath(path)) throw new Error(`Invalid asset path ${JSON.stringify(path.slice(0, 80))}: a path starts with '/', has no empty, '.' or '..' segment and no control character, and is at most ${MAX_PATH} characters.`);
    const file = manifest[path];
    if (!isObject(file) || !isAssetHash(file.hash) || !Number.isSafeInteger(file.size) || (file.size as number) < 0 ||
      typeof file.contentType !== 'string' || !CONTENT_TYPE.test(file.contentType)) {
      throw new Error(`Invalid asset '${path}': it must be {"hash": "<SHA-256 of the bytes, 64 hex digits>", "size": <bytes>, "contentType": "<a header value>"}.`);
    }
    if ((file.size as number) > MAX_ASSET_BYTES) throw new Error(`The asset '${path}' is ${file.size} bytes, over the limit of ${MAX_ASSET_BYTES} (25 MiB) per file.`);
    content.manifest[path] = { hash: file.hash, size: file.size as number, contentType: file.contentType };
  }
  return content;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
