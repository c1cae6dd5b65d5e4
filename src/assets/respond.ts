// The HTTP answer from a worker's static assets, as Cloudflare's asset server gives it: which
// requests assets take (routing), redirects, ETag and If-None-Match, HEAD, a single byte range,
// and the headers it sends. Used on `isolet serve` (in the control process, without entering
// the isolate), in `isolet dev`, and behind `env.ASSETS.fetch()`.

import { STATUS_CODES } from 'node:http';
import type { RuntimeResponse } from '../runtime/types.ts';
import type { AssetsConfig } from './manifest.ts';
import { decodeAssetPath, encodeAssetPath, resolveAsset, type FindAsset } from './resolve.ts';

/** Where the files come from: a version's manifest and the store, or a directory on disk. */
export interface AssetSource {
  find: FindAsset;
  /** The file at a path find() named; undefined if it is gone since. */
  open(path: string): Promise<OpenedAsset | undefined>;
}

export interface OpenedAsset {
  bytes: Uint8Array;
  contentType: string;
  /** The ETag's value without quotes (the content hash). */
  etag: string;
}

/** The part of a request assets look at. */
export interface AssetRequest {
  method: string;
  url: string;
  headers: Iterable<[string, string]>;
}

export interface AssetRouting {
  /**
   * 'front': a client's request to a worker that has code: only what matches a file is
   * answered here (not_found_handling applies only to navigations when the compatibility date
   * or flags ask for it), everything else goes to the worker (undefined). 'assets': no worker, or
   * `env.ASSETS.fetch()`: every request is answered.
   */
  mode: 'front' | 'assets';
  /**
   * A browser navigation that matches nothing gets not_found_handling even with a worker:
   * `navigationPrefersAssets()` of the worker's compatibility date and flags
   * (src/runtime/compatibility.ts).
   */
  navigationPrefersAssets?: boolean;
}

/** What Cloudflare sends with an asset a browser may cache but must revalidate (by ETag). */
export const ASSET_CACHE_CONTROL = 'public, max-age=0, must-revalidate';

/** The answer from assets, or undefined when the request goes to the worker. */
export async function serveAsset(request: AssetRequest, config: AssetsConfig, source: AssetSource, routing: AssetRouting): Promise<RuntimeResponse | undefined> {
  const toWorker = routing.mode === 'front';
  if (toWorker && config.runWorkerFirst === true) return undefined;
  const head = readHeaders(request.headers);
  let notFoundHandling = config.notFoundHandling ?? 'none';
  if (toWorker && !(routing.navigationPrefersAssets === true && head.secFetchMode === 'navigate')) notFoundHandling = 'none';

  const url = new URL(request.url);
  const decoded = decodeAssetPath(url.pathname);
  const intent = resolveAsset(decoded, { htmlHandling: config.htmlHandling ?? 'auto-trailing-slash', notFoundHandling }, source.find);
  if (intent === undefined) return toWorker ? undefined : empty(404);
  const method = request.method.toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') return empty(405);

  // A path is served at its canonical encoding (/[x] is /%5Bx%5D): one redirect fixes both that and html_handling's.
  const location = encodeAssetPath(intent.kind === 'redirect' ? intent.location : decoded);
  if (intent.kind === 'redirect' || location !== url.pathname) return { ...empty(307), headers: [['location', location + url.search]] };

  const file = await source.open(intent.path);
  if (file === undefined) return toWorker ? undefined : empty(404);
  const headers: [string, string][] = [['content-type', file.contentType], ['etag', `"${file.etag}"`]];
  if (!head.authorization && head.range === undefined) headers.push(['cache-control', ASSET_CACHE_CONTROL]);
  if (head.ifNoneMatch !== undefined && etagMatches(head.ifNoneMatch, file.etag)) return { status: 304, statusText: STATUS_CODES[304]!, headers, body: null };

  let status: number = intent.status;
  let body = file.bytes;
  if (status === 200 && head.range !== undefined) {
    const range = byteRange(head.range, body.byteLength);
    if (range === 'unsatisfiable') {
      return { status: 416, statusText: STATUS_CODES[416]!, headers: [...headers, ['content-range', `bytes */${body.byteLength}`]], body: null };
    }
    if (range !== undefined) {
      headers.push(['content-range', `bytes ${range.start}-${range.end}/${body.byteLength}`]);
      body = body.subarray(range.start, range.end + 1);
      status = 206;
    }
  }
  if (method === 'HEAD') return { status, statusText: STATUS_CODES[status]!, headers: [...headers, ['content-length', String(body.byteLength)]], body: null };
  return { status, statusText: STATUS_CODES[status]!, headers, body };
}

interface AssetHeaders {
  ifNoneMatch?: string;
  range?: string;
  authorization: boolean;
  secFetchMode?: string;
}

function readHeaders(headers: Iterable<[string, string]>): AssetHeaders {
  const found: AssetHeaders = { authorization: false };
  for (const [name, value] of headers) {
    switch (name.toLowerCase()) {
      case 'if-none-match': found.ifNoneMatch = found.ifNoneMatch === undefined ? value : `${found.ifNoneMatch}, ${value}`; break;
      case 'range': found.range = value; break;
      case 'authorization': found.authorization = true; break;
      case 'sec-fetch-mode': found.secFetchMode = value; break;
    }
  }
  return found;
}

/** If-None-Match compares weakly (RFC 9110 §13.1.2): `"h"`, `W/"h"` or `*`, in a list. */
function etagMatches(header: string, etag: string): boolean {
  for (const item of header.split(',')) {
    const tag = item.trim();
    if (tag === '*' || tag === `"${etag}"` || tag === `W/"${etag}"`) return true;
  }
  return false;
}

/**
 * One range of `bytes=a-b`, `bytes=a-` or `bytes=-n`; undefined (the whole file) for anything
 * else, several ranges included, as RFC 9110 §14.2 lets a server do.
 */
function byteRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null || size === 0 || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end };
}

function empty(status: number): RuntimeResponse {
  return { status, statusText: STATUS_CODES[status]!, headers: [], body: null };
}
