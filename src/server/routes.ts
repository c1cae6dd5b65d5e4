// Which worker serves a request on the data plane: `<worker>.<domain>` first, then the custom
// routes. A route is `host/path`: the host exact (`api.example.com`) or a wildcard over its
// subdomains (`*.example.com`), the path exact (`/health`) or a prefix ending in `*`
// (`/v1/*`). The most specific route wins: an exact host over a wildcard one (and a longer
// wildcard over a shorter), then an exact path over any prefix, then the longest prefix.
// A RouteTable is immutable: the server builds a new one when routes change and swaps it in.

export interface RoutePattern {
  /** Normalized text, `host/path` (what the store keeps and the API shows). */
  pattern: string;
  /** Lowercase host, without the `*.` of a wildcard. */
  host: string;
  wildcard: boolean;
  /** Path without the trailing `*` of a prefix. */
  path: string;
  prefix: boolean;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PATH = /^\/[A-Za-z0-9\-._~!$&'()+,;=:@%/]*$/;

/**
 * Parses and normalizes a route pattern; throws an Error whose message says what is wrong.
 * A bare host (`example.com`) means every path on it (`example.com/*`).
 */
export function parseRoutePattern(text: string, platformDomain: string): RoutePattern {
  if (typeof text !== 'string' || text.length === 0 || text.length > 512) {
    throw new Error(`Invalid route ${JSON.stringify(text)}: a route is 'host/path', e.g. 'api.example.com/v1/*'.`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new Error(`Invalid route '${text}': leave out the scheme, e.g. 'api.example.com/v1/*'.`);
  }
  const slash = text.indexOf('/');
  let host = (slash === -1 ? text : text.slice(0, slash)).toLowerCase();
  let path = slash === -1 ? '/*' : text.slice(slash);
  const wildcard = host.startsWith('*.');
  if (wildcard) host = host.slice(2);
  const labels = host.split('.');
  if (host.length > 253 || labels.length < 2 || !labels.every((label) => LABEL.test(label)) || /^\d+$/.test(labels.at(-1)!)) {
    throw new Error(
      `Invalid route '${text}': the host must be a domain name such as 'api.example.com' or '*.example.com' (no port, no IP address).`,
    );
  }
  const domain = platformDomain.toLowerCase();
  if (host === domain || host.endsWith('.' + domain)) {
    throw new Error(`Invalid route '${text}': hosts under '${domain}' are the workers' own addresses and cannot be routed.`);
  }
  const prefix = path.endsWith('*');
  if (prefix) path = path.slice(0, -1);
  if (!PATH.test(path)) {
    throw new Error(`Invalid route '${text}': the path must start with '/' and may contain '*' only at its end.`);
  }
  return { pattern: `${wildcard ? '*.' : ''}${host}${path}${prefix ? '*' : ''}`, host, wildcard, path, prefix };
}

interface HostRoutes {
  /** Exact paths. */
  exact: Map<string, string>;
  /** Prefixes, longest first. */
  prefixes: { path: string; worker: string }[];
}

export class RouteTable {
  readonly #domainSuffix: string;
  readonly #exactHosts = new Map<string, HostRoutes>();
  readonly #wildcardHosts = new Map<string, HostRoutes>();
  readonly #hasWorker: (name: string) => boolean;

  /**
   * `routes` are normalized patterns with their workers; `hasWorker` says whether a
   * `<name>.<domain>` host names a loaded worker.
   */
  constructor(domain: string, routes: Iterable<{ pattern: string; worker: string }>, hasWorker: (name: string) => boolean) {
    this.#domainSuffix = '.' + domain.toLowerCase();
    this.#hasWorker = hasWorker;
    for (const { pattern, worker } of routes) {
      const route = parseRoutePattern(pattern, '\0'); // stored patterns were checked against the domain already
      const table = route.wildcard ? this.#wildcardHosts : this.#exactHosts;
      let host = table.get(route.host);
      if (host === undefined) {
        host = { exact: new Map(), prefixes: [] };
        table.set(route.host, host);
      }
      if (route.prefix) host.prefixes.push({ path: route.path, worker });
      else host.exact.set(route.path, worker);
    }
    for (const table of [this.#exactHosts, this.#wildcardHosts]) {
      for (const host of table.values()) host.prefixes.sort((a, b) => b.path.length - a.path.length);
    }
  }

  /** The worker for a request's Host header value ("name[:port]") and target ("/path?query"), if any. */
  match(hostHeader: string, target: string): string | undefined {
    const host = stripPort(hostHeader).toLowerCase();
    if (host.endsWith(this.#domainSuffix)) {
      const name = host.slice(0, -this.#domainSuffix.length);
      return !name.includes('.') && this.#hasWorker(name) ? name : undefined;
    }
    const query = target.indexOf('?');
    const path = query === -1 ? target : target.slice(0, query);
    const exact = this.#exactHosts.get(host);
    if (exact !== undefined) {
      const worker = matchPath(exact, path);
      if (worker !== undefined) return worker;
    }
    // Wildcards from the longest suffix to the shortest: a.b.example.com tries *.b.example.com, then *.example.com.
    for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
      const routes = this.#wildcardHosts.get(host.slice(dot + 1));
      if (routes !== undefined) {
        const worker = matchPath(routes, path);
        if (worker !== undefined) return worker;
      }
    }
    return undefined;
  }
}

function matchPath(routes: HostRoutes, path: string): string | undefined {
  const exact = routes.exact.get(path);
  if (exact !== undefined) return exact;
  for (const prefix of routes.prefixes) if (path.startsWith(prefix.path)) return prefix.worker;
  return undefined;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host; // IP literal: never a route
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
