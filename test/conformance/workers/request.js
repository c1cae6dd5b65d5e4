// Request: constructors, method normalisation, invalid arguments, body reuse, clone, signal,
// and the incoming request as the runtime builds it.
import { probeRoutes, err, aerr } from './_probe.js';

const METHODS = ['get', 'post', 'put', 'delete', 'head', 'options', 'patch', 'Patch', 'purge', 'propfind', 'mkcol',
  'report', 'search', 'trace', 'track', 'connect', 'FOO', 'foo', 'm-search', 'bad method', '', 'GeT'];

export default probeRoutes({
  '/construct': () => ({
    url: () => new Request('HTTPS://Example.COM:443/a/../b?x#y').url,
    urlObject: () => new Request(new URL('http://a/p')).url,
    relative: () => err(() => new Request('/relative')),
    noArgs: () => err(() => new Request()),
    invalidUrl: () => err(() => new Request('http://[bad')),
    credentialsInUrl: () => err(() => new Request('http://u:p@a/')),
    defaults: () => {
      const r = new Request('http://a/');
      return [r.method, r.redirect, r.bodyUsed, r.body, r.integrity, r.keepalive, r.cache, r.mode, r.credentials,
        r.referrer, r.referrerPolicy, r.destination, typeof r.signal, r.signal.aborted, [...r.headers]];
    },
    cfProperty: () => [new Request('http://a/').cf, new Request('http://a/', { cf: { x: 1 } }).cf],
    fetcher: () => new Request('http://a/').fetcher,
    redirectModes: () => ['follow', 'manual', 'error'].map((redirect) => {
      try {
        return new Request('http://a/', { redirect }).redirect;
      } catch (e) {
        return `throws ${e.constructor.name}`;
      }
    }),
    redirectBad: () => err(() => new Request('http://a/', { redirect: 'nope' })),
    getWithBody: () => err(() => new Request('http://a/', { method: 'GET', body: 'x' })),
    headWithBody: () => err(() => new Request('http://a/', { method: 'HEAD', body: 'x' })),
    getWithNullBody: () => new Request('http://a/', { method: 'GET', body: null }).method,
    cacheOption: () => err(() => new Request('http://a/', { cache: 'no-store' })),
    modeOption: () => err(() => new Request('http://a/', { mode: 'cors' })),
    credentialsOption: () => err(() => new Request('http://a/', { credentials: 'include' })),
    integrity: () => new Request('http://a/', { integrity: 'sha256-x' }).integrity,
    headersInit: () => [...new Request('http://a/', { headers: [['X-B', '2'], ['x-a', '1']] }).headers],
    contentTypeFromString: () => new Request('http://a/', { method: 'POST', body: 'x' }).headers.get('content-type'),
    contentTypeFromParams: () => new Request('http://a/', { method: 'POST', body: new URLSearchParams('a=1') }).headers.get('content-type'),
    contentTypeFromBytes: () => new Request('http://a/', { method: 'POST', body: new Uint8Array(1) }).headers.get('content-type'),
    contentTypeKept: () => new Request('http://a/', { method: 'POST', body: 'x', headers: { 'content-type': 'a/b' } }).headers.get('content-type'),
    toStringTag: () => Object.prototype.toString.call(new Request('http://a/')),
    ownKeys: () => Object.keys(new Request('http://a/')),
  }),
  '/methods': () =>
    Object.fromEntries(
      METHODS.map((method) => [
        JSON.stringify(method),
        () => {
          try {
            return new Request('http://a/', { method }).method;
          } catch (e) {
            return `throws ${e.constructor.name}`;
          }
        },
      ]),
    ),
  '/body': () => ({
    text: async () => {
      const r = new Request('http://a/', { method: 'POST', body: 'héllo' });
      return [r.bodyUsed, await r.text(), r.bodyUsed];
    },
    twice: async () => {
      const r = new Request('http://a/', { method: 'POST', body: 'x' });
      await r.text();
      return [await aerr(() => r.text()), await aerr(() => r.arrayBuffer())];
    },
    json: async () => new Request('http://a/', { method: 'POST', body: '{"a":[1,"é"]}' }).json(),
    badJson: () => aerr(() => new Request('http://a/', { method: 'POST', body: '{' }).json()),
    arrayBuffer: async () => new Request('http://a/', { method: 'POST', body: 'ab' }).arrayBuffer(),
    bytesMethod: async () => {
      const r = new Request('http://a/', { method: 'POST', body: 'ab' });
      return typeof r.bytes === 'function' ? r.bytes() : 'no bytes()';
    },
    emptyBodyText: async () => [await new Request('http://a/').text(), new Request('http://a/').body],
    fromRequestMovesBody: async () => {
      const a = new Request('http://a/', { method: 'POST', body: 'hi', headers: { 'X-T': '1' } });
      const b = new Request(a);
      return [a.bodyUsed, b.bodyUsed, b.method, b.headers.get('x-t'), await b.text(), err(() => new Request(a))];
    },
    fromRequestOverrides: () => {
      const a = new Request('http://a/', { method: 'PUT', headers: { x: '1' }, redirect: 'manual' });
      const b = new Request(a, { method: 'DELETE', headers: { y: '2' } });
      return [b.url, b.method, [...b.headers], b.redirect];
    },
    fromRequestGetWithBody: () => err(() => new Request(new Request('http://a/', { method: 'POST', body: 'x' }), { method: 'GET' })),
    // Fetch §5.4: a used request's body is refused only when it would be taken; an init body replaces it.
    fromUsedRequestNewBody: async () => {
      const a = new Request('http://a/', { method: 'POST', body: 'x' });
      await a.text();
      const b = new Request(a, { body: 'y' });
      const c = new Request(a, { method: 'PUT', body: 'z' });
      return [a.bodyUsed, b.bodyUsed, b.method, await b.text(), c.method, await c.text(), err(() => new Request(a, { body: null })), err(() => new Request(a)), err(() => new Request(a, { body: undefined }))];
    },
    emptyBodyRead: async () => {
      const { done, value } = await new Request('http://a/', { method: 'POST', body: '' }).body.getReader().read();
      return [done, value];
    },
    clone: async () => {
      const r = new Request('http://a/', { method: 'POST', body: 'data', headers: { a: '1' } });
      const c = r.clone();
      c.headers.set('a', '2');
      return [await r.text(), await c.text(), r.headers.get('a'), c.headers.get('a'), err(() => r.clone())];
    },
    cloneSignal: () => {
      const ac = new AbortController();
      const r = new Request('http://a/', { signal: ac.signal });
      const c = r.clone();
      ac.abort('why');
      return [r.signal.aborted, c.signal.aborted, c.signal.reason];
    },
    signal: () => {
      const ac = new AbortController();
      const s = new Request('http://a/', { signal: ac.signal });
      return [s.signal === ac.signal, s.signal.aborted];
    },
    badSignal: () => err(() => new Request('http://a/', { signal: {} })),
    nullSignal: () => new Request('http://a/', { signal: null }).signal === null,
  }),
  '/incoming': async (request) => ({
    method: () => request.method,
    url: () => request.url,
    headers: () => [...request.headers],
    body: async () => (request.body === null ? null : await request.text()),
    bodyUsed: () => request.bodyUsed,
    redirect: () => request.redirect,
    signal: () => [typeof request.signal, request.signal?.aborted],
    cf: () => typeof request.cf,
    toStringTag: () => Object.prototype.toString.call(request),
    immutableHeaders: () => err(() => request.headers.set('x', 'y')),
    clone: async () => {
      const c = request.clone();
      return [c.url, c.method, c.bodyUsed];
    },
  }),
});
