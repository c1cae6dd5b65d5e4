// The dashboard's files: one HTML page, its script and its style sheet, served by the admin
// listener under /dashboard/. The page holds no data: it signs in with a token and reads
// everything through the admin API (/v1/...) like any other client, so it has no authority of
// its own and needs no authentication to be fetched. The script is the TypeScript in
// src/dashboard/client/, bundled by esbuild the first time the page is asked for, and kept.
//
// Every answer carries a Content-Security-Policy that allows scripts and styles from this
// origin only (nothing inline, no eval), and Trusted Types with no policy at all, so no string
// can ever become HTML or script in the page: a tenant's worker name, log line or version
// message can only ever be text.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const DASHBOARD_PATH = '/dashboard/';

// '../../src/': this file runs as src/dashboard/*.ts in a checkout and as dist/dashboard/*.js in
// the npm package, and the client's sources are in src/ in both.
const CLIENT_DIR = new URL('../../src/dashboard/client/', import.meta.url);

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
}

let assets: Promise<Map<string, Asset>> | undefined;

/** Whether the admin API should hand this path to the dashboard. */
export function isDashboardPath(pathname: string): boolean {
  return pathname === '/dashboard' || pathname.startsWith(DASHBOARD_PATH);
}

/** Answers a request for the dashboard: its page, script or style sheet, else 404. */
export async function serveDashboard(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'The dashboard is read with GET.', { allow: 'GET, HEAD' });
  // The page's relative links (app.js, app.css) need the trailing slash.
  if (pathname === '/dashboard') return plain(res, 308, 'The dashboard is at /dashboard/.', { location: DASHBOARD_PATH });
  const asset = (await dashboardAssets()).get(pathname.slice(DASHBOARD_PATH.length) || 'index.html');
  if (asset === undefined) return plain(res, 404, 'No such file: the dashboard is at /dashboard/.');
  const headers = { 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': asset.body.length });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}

/** The dashboard's files by name, built once per process (a failed build is tried again next time). */
export function dashboardAssets(): Promise<Map<string, Asset>> {
  assets ??= buildAssets().catch((error: unknown) => {
    assets = undefined;
    throw error;
  });
  return assets;
}

async function buildAssets(): Promise<Map<string, Asset>> {
  const [page, icon, bundle] = await Promise.all([
    readFile(new URL('index.html', CLIENT_DIR)),
    readFile(new URL('icon.svg', CLIENT_DIR)),
    build({
      entryPoints: { app: fileURLToPath(new URL('main.ts', CLIENT_DIR)), style: fileURLToPath(new URL('app.css', CLIENT_DIR)) },
      bundle: true,
      write: false,
      outdir: 'out',
      format: 'esm',
      platform: 'browser',
      target: ['chrome120', 'firefox120', 'safari17'],
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    }),
  ]);
  const files = new Map<string, Asset>();
  const add = (name: string, type: string, body: Buffer) => {
    files.set(name, { type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  };
  add('index.html', 'text/html; charset=utf-8', page);
  add('icon.svg', 'image/svg+xml', icon);
  for (const output of bundle.outputFiles) {
    if (output.path.endsWith('app.js')) add('app.js', 'text/javascript; charset=utf-8', Buffer.from(output.contents));
    else if (output.path.endsWith('style.css')) add('app.css', 'text/css; charset=utf-8', Buffer.from(output.contents));
  }
  return files;
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text + '\n');
}
