// Which file, if any, answers a request path: Cloudflare's html_handling and not_found_handling
// rules (docs/COMPATIBILITY.md, "Static assets"), over any source of files. A path is served
// as a file, redirected (307) to where that file is served canonically, or matches nothing.
// The same rules run on `isolet serve` (a version's manifest) and in `isolet dev` (the disk).

import type { HtmlHandling, NotFoundHandling } from './manifest.ts';

/** The identity of the file at a decoded path ("/a/b.html"), or undefined when there is none. */
export type FindAsset = (path: string) => string | undefined;

export type AssetIntent =
  /** Serve the file at `path` with this status (404: a 404 page). */
  | { kind: 'file'; path: string; status: 200 | 404 }
  /** Redirect to `location` (a decoded path). */
  | { kind: 'redirect'; location: string };

export interface ResolveRules {
  htmlHandling: HtmlHandling;
  notFoundHandling: NotFoundHandling;
}

export function resolveAsset(path: string, rules: ResolveRules, find: FindAsset): AssetIntent | undefined {
  return new Resolver(rules, find).resolve(path, false);
}

class Resolver {
  readonly #rules: ResolveRules;
  readonly #find: FindAsset;

  constructor(rules: ResolveRules, find: FindAsset) {
    this.#rules = rules;
    this.#find = find;
  }

  resolve(p: string, noRedirects: boolean): AssetIntent | undefined {
    switch (this.#rules.htmlHandling) {
      case 'auto-trailing-slash': return this.#auto(p, noRedirects);
      case 'force-trailing-slash': return this.#force(p, noRedirects);
      case 'drop-trailing-slash': return this.#drop(p, noRedirects);
      case 'none': return this.#serve(p) ?? this.#notFound(p);
    }
  }

  // Files are served without a trailing slash, folders' index.html with one.
  #auto(p: string, noRedirects: boolean): AssetIntent | undefined {
    const r = (file: string, to: string) => this.#redirect(file, to, noRedirects);
    const exact = this.#serve(p);
    if (p.endsWith('/index')) {
      const base = p.slice(0, -'/index'.length);
      const found = exact ?? r(`${p}.html`, `${base}/`) ?? r(`${base}.html`, base);
      if (found) return found;
    } else if (p.endsWith('/index.html')) {
      const base = p.slice(0, -'/index.html'.length);
      const found = r(p, `${base}/`) ?? r(`${base}.html`, base);
      if (found) return found;
    } else if (p.endsWith('/')) {
      const base = p.slice(0, -1);
      const found = this.#serve(`${p}index.html`) ?? r(`${base}.html`, base);
      if (found) return found;
    } else if (p.endsWith('.html')) {
      const base = p.slice(0, -'.html'.length);
      const found = r(p, base) ?? r(`${base}/index.html`, `${base}/`);
      if (found) return found;
    }
    return exact ?? this.#serve(`${p}.html`) ?? r(`${p}/index.html`, `${p}/`) ?? this.#notFound(p);
  }

  // Every HTML page is served with a trailing slash.
  #force(p: string, noRedirects: boolean): AssetIntent | undefined {
    const r = (file: string, to: string) => this.#redirect(file, to, noRedirects);
    const exact = this.#serve(p);
    if (p.endsWith('/index')) {
      const base = p.slice(0, -'/index'.length);
      const found = exact ?? r(`${p}.html`, `${base}/`) ?? r(`${base}.html`, `${base}/`);
      if (found) return found;
    } else if (p.endsWith('/index.html')) {
      const base = p.slice(0, -'/index.html'.length);
      const found = r(p, `${base}/`) ?? r(`${base}.html`, `${base}/`);
      if (found) return found;
    } else if (p.endsWith('/')) {
      const found = this.#serve(`${p}index.html`) ?? this.#serve(`${p.slice(0, -1)}.html`);
      if (found) return found;
    } else if (p.endsWith('.html')) {
      const base = p.slice(0, -'.html'.length);
      // With both /foo.html and /foo/index.html, /foo.html stays where it is.
      const found = r(p, `${base}/`) ?? exact ?? r(`${base}/index.html`, `${base}/`);
      if (found) return found;
    }
    return exact ?? r(`${p}.html`, `${p}/`) ?? r(`${p}/index.html`, `${p}/`) ?? this.#notFound(p);
  }

  // Every HTML page is served without a trailing slash (but "/" stays "/").
  #drop(p: string, noRedirects: boolean): AssetIntent | undefined {
    const r = (file: string, to: string) => this.#redirect(file, to, noRedirects);
    const exact = this.#serve(p);
    if (p.endsWith('/index')) {
      const base = p.slice(0, -'/index'.length);
      const found = exact ?? (p === '/index' ? r('/index.html', '/') : (r(`${base}.html`, base) ?? r(`${p}.html`, base)));
      if (found) return found;
    } else if (p.endsWith('/index.html')) {
      const base = p.slice(0, -'/index.html'.length);
      // With both /foo.html and /foo/index.html, /foo/index.html stays where it is.
      const found = p === '/index.html' ? r(p, '/') : (r(p, base) ?? exact ?? r(`${base}.html`, base));
      if (found) return found;
    } else if (p.endsWith('/')) {
      const base = p.slice(0, -1);
      const found = p === '/' ? this.#serve('/index.html') : (r(`${base}.html`, base) ?? r(`${base}/index.html`, base));
      if (found) return found;
    } else if (p.endsWith('.html')) {
      const base = p.slice(0, -'.html'.length);
      const found = r(p, base) ?? r(`${base}/index.html`, base);
      if (found) return found;
    }
    return exact ?? this.#serve(`${p}.html`) ?? this.#serve(`${p}/index.html`) ?? this.#notFound(p);
  }

  #serve(path: string, status: 200 | 404 = 200): AssetIntent | undefined {
    return this.#find(path) === undefined ? undefined : { kind: 'file', path, status };
  }

  /**
   * A redirect to `to` when `file` exists and is what `to` would serve; never when `to` is a
   * file itself, and never while checking another redirect's target (one hop at most).
   */
  #redirect(file: string, to: string, noRedirects: boolean): AssetIntent | undefined {
    if (noRedirects || this.#find(to) !== undefined) return undefined;
    const identity = this.#find(file);
    if (identity === undefined) return undefined;
    const target = this.resolve(to, true);
    if (target?.kind !== 'file' || this.#find(target.path) !== identity) return undefined;
    return { kind: 'redirect', location: to };
  }

  #notFound(p: string): AssetIntent | undefined {
    switch (this.#rules.notFoundHandling) {
      case 'single-page-application':
        return this.#serve('/index.html');
      case '404-page':
        // The nearest 404.html: /a/b/c tries /a/b/404.html, /a/404.html, then /404.html.
        for (let dir = p.slice(0, p.lastIndexOf('/')); ; dir = dir.slice(0, dir.lastIndexOf('/'))) {
          const page = this.#serve(`${dir}/404.html`, 404);
          if (page || dir === '') return page;
        }
      case 'none':
        return undefined;
    }
  }
}

/**
 * A request path as the files are named: each segment percent-decoded (one that does not decode
 * stays as it is), and runs of slashes made one.
 */
export function decodeAssetPath(pathname: string): string {
  return pathname
    .split('/')
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    })
    .join('/')
    .replace(/\/{2,}/g, '/');
}

/** The canonical request path of a decoded path: each segment percent-encoded. */
export function encodeAssetPath(path: string): string {
  return path.split('/').map((segment) => encodeURIComponent(segment)).join('/');
}
