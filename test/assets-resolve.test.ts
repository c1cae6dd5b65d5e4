// Which file answers a path: html_handling's four modes and not_found_handling, on the layout
// Cloudflare's documentation uses (/file.html and /folder/index.html), plus path decoding.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAssetPath, encodeAssetPath, resolveAsset, type AssetIntent } from '../src/assets/resolve.ts';
import type { HtmlHandling, NotFoundHandling } from '../src/assets/manifest.ts';

const FILES = ['/index.html', '/file.html', '/folder/index.html', '/logo.png', '/404.html', '/blog/404.html', '/blog/post.html'];

function resolve(path: string, htmlHandling: HtmlHandling, notFoundHandling: NotFoundHandling = 'none', files = FILES): string {
  const present = new Set(files);
  const intent: AssetIntent | undefined = resolveAsset(path, { htmlHandling, notFoundHandling }, (p) => (present.has(p) ? p : undefined));
  if (intent === undefined) return 'none';
  return intent.kind === 'redirect' ? `307 ${intent.location}` : `${intent.status} ${intent.path}`;
}

/** [request, auto-trailing-slash, force-trailing-slash, drop-trailing-slash, none] */
const TABLE: [string, string, string, string, string][] = [
  ['/', '200 /index.html', '200 /index.html', '200 /index.html', 'none'],
  ['/index.html', '307 /', '307 /', '307 /', '200 /index.html'],
  ['/file', '200 /file.html', '307 /file/', '200 /file.html', 'none'],
  ['/file.html', '307 /file', '307 /file/', '307 /file', '200 /file.html'],
  ['/file/', '307 /file', '200 /file.html', '307 /file', 'none'],
  ['/file/index', '307 /file', '307 /file/', '307 /file', 'none'],
  ['/file/index.html', '307 /file', '307 /file/', '307 /file', 'none'],
  ['/folder', '307 /folder/', '307 /folder/', '200 /folder/index.html', 'none'],
  ['/folder.html', '307 /folder/', '307 /folder/', '307 /folder', 'none'],
  ['/folder/', '200 /folder/index.html', '200 /folder/index.html', '307 /folder', 'none'],
  ['/folder/index', '307 /folder/', '307 /folder/', '307 /folder', 'none'],
  ['/folder/index.html', '307 /folder/', '307 /folder/', '307 /folder', '200 /folder/index.html'],
  ['/logo.png', '200 /logo.png', '200 /logo.png', '200 /logo.png', '200 /logo.png'],
  ['/logo.png/', 'none', 'none', 'none', 'none'],
  ['/missing', 'none', 'none', 'none', 'none'],
];

describe('html_handling', () => {
  const modes: HtmlHandling[] = ['auto-trailing-slash', 'force-trailing-slash', 'drop-trailing-slash', 'none'];
  for (const [index, mode] of modes.entries()) {
    test(mode, () => {
      for (const row of TABLE) assert.equal(resolve(row[0], mode), row[index + 1], `${mode}: ${row[0]}`);
    });
  }
});

describe('not_found_handling', () => {
  test('404-page serves the nearest 404.html with status 404', () => {
    assert.equal(resolve('/blog/missing', 'auto-trailing-slash', '404-page'), '404 /blog/404.html');
    assert.equal(resolve('/blog/deeper/missing', 'auto-trailing-slash', '404-page'), '404 /blog/404.html');
    assert.equal(resolve('/elsewhere/missing', 'auto-trailing-slash', '404-page'), '404 /404.html');
    assert.equal(resolve('/blog/post', 'auto-trailing-slash', '404-page'), '200 /blog/post.html');
    assert.equal(resolve('/missing', 'none', '404-page', ['/index.html']), 'none');
  });

  test('single-page-application serves /index.html with 200 for any path that matches nothing', () => {
    assert.equal(resolve('/app/users/7', 'auto-trailing-slash', 'single-page-application'), '200 /index.html');
    assert.equal(resolve('/logo.png', 'auto-trailing-slash', 'single-page-application'), '200 /logo.png');
    assert.equal(resolve('/anything', 'none', 'single-page-application', ['/other.html']), 'none');
  });
});

test('request paths are decoded per segment, with runs of slashes made one', () => {
  assert.equal(decodeAssetPath('/a%20b/%5Bid%5D.html'), '/a b/[id].html');
  assert.equal(decodeAssetPath('//a///b'), '/a/b');
  assert.equal(decodeAssetPath('/bad%zzsegment'), '/bad%zzsegment');
  assert.equal(encodeAssetPath('/a b/[id].html'), '/a%20b/%5Bid%5D.html');
});
