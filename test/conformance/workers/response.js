// Response: constructor, statuses, statusText, body kinds, body reuse, clone, Response.json,
// Response.redirect, Response.error.
import { probeRoutes, err, aerr } from './_probe.js';

const STATUSES = [0, 100, 101, 199, 200, 201, 204, 205, 299, 300, 304, 399, 404, 418, 499, 500, 599, 600, 1000, -1, 200.5, '201', NaN];

export default probeRoutes({
  '/construct': () => ({
    defaults: () => {
      const r = new Response();
      return [r.status, r.statusText, r.ok, r.type, r.url, r.redirected, r.bodyUsed, r.body, [...r.headers]];
    },
    workersExtras: () => {
      const r = new Response('x');
      return [r.webSocket, r.cf, r.encodeBody];
    },
    statusText: () => new Response('', { status: 404, statusText: 'Nope' }).statusText,
    statusTextInvalid: () => err(() => new Response('x', { statusText: 'a\nb' })),
    statusTextNonLatin: () => err(() => new Response('x', { statusText: '€' })),
    ok: () => [new Response('x', { status: 299 }).ok, new Response('x', { status: 300 }).ok, new Response('x', { status: 200 }).ok],
    nullBodyStatus: () => [err(() => new Response('x', { status: 204 })), err(() => new Response('x', { status: 304 })),
      err(() => new Response('', { status: 204 })), new Response(null, { status: 204 }).status],
    headers: () => [...new Response('x', { headers: [['X-A', '1'], ['x-a', '2']] }).headers],
    contentTypes: () => [
      new Response('x').headers.get('content-type'),
      new Response(new Uint8Array(1)).headers.get('content-type'),
      new Response(new ArrayBuffer(1)).headers.get('content-type'),
      new Response(new URLSearchParams('a=1')).headers.get('content-type'),
      new Response(null).headers.get('content-type'),
      new Response('x', { headers: { 'Content-Type': 'a/b' } }).headers.get('content-type'),
    ],
    toStringTag: () => Object.prototype.toString.call(new Response()),
    ownKeys: () => Object.keys(new Response()),
    badInit: () => err(() => new Response('x', 5)),
    encodeBody: () => err(() => new Response('x', { encodeBody: 'manual' })),
  }),
  '/statuses': () =>
    Object.fromEntries(
      STATUSES.map((status) => [
        JSON.stringify(String(status)),
        () => {
          try {
            const r = new Response(null, { status });
            return [r.status, r.statusText, r.ok];
          } catch (e) {
            return `throws ${e.constructor.name}`;
          }
        },
      ]),
    ),
  '/body': () => ({
    // An empty body is a stream that ends at once (the read used never to resolve).
    emptyBodyReads: async () => {
      const out = [new Response().body, new Response(null).body];
      for (const init of ['', new Uint8Array(0), new Blob([]), new URLSearchParams()]) {
        const { done, value } = await new Response(init).body.getReader().read();
        out.push([done, value]);
      }
      const byob = await new Response('').body.getReader({ mode: 'byob' }).read(new Uint8Array(4));
      out.push([byob.done, byob.value]);
      const r = new Response('');
      void r.body;
      out.push(await r.text(), r.bodyUsed, await new Response(new Response('').body).text());
      const chunks = [];
      for await (const chunk of new Response('').body) chunks.push(chunk);
      out.push(chunks);
      return out;
    },
    text: async () => [await new Response('héllo').text(), await new Response(null).text(), await new Response().text()],
    json: async () => new Response('{"a":[1,2]}').json(),
    badJson: () => aerr(() => new Response('{bad').json()),
    arrayBuffer: async () => new Response('ab').arrayBuffer(),
    bytes: async () => (typeof Response.prototype.bytes === 'function' ? new Response('ab').bytes() : 'no bytes()'),
    fromView: async () => {
      const bytes = new Uint8Array([0, 104, 105, 0]);
      return [await new Response(bytes.subarray(1, 3)).text(), await new Response(new DataView(bytes.buffer, 1, 2)).text()];
    },
    copiedAtConstruction: async () => {
      const b = new Uint8Array([65, 66]);
      const r = new Response(b);
      b[0] = 67;
      return r.text();
    },
    params: async () => new Response(new URLSearchParams({ q: 'a b&c', é: '1' })).text(),
    bom: async () => new Response(new Uint8Array([0xef, 0xbb, 0xbf, 0x41, 0xff])).text(),
    numberBody: async () => new Response(42).text(),
    objectBody: async () => new Response({}).text(),
    loneSurrogate: async () => new Response('\ud800').arrayBuffer(),
    twice: async () => {
      const r = new Response('once');
      await r.text();
      return [r.bodyUsed, await aerr(() => r.text()), await aerr(() => r.json()), err(() => r.clone())];
    },
    twiceMessage: async () => {
      const r = new Response('once');
      await r.text();
      return aerr(() => r.text());
    },
    bodyUsedNull: async () => {
      const r = new Response(null);
      await r.text();
      return [r.bodyUsed, await r.text()];
    },
    clone: async () => {
      const base = new Response('body', { status: 202, statusText: 'OK!', headers: { a: '1' } });
      const c = base.clone();
      c.headers.set('a', '2');
      return [c.status, c.statusText, c.headers.get('a'), base.headers.get('a'), await c.text(), await base.text()];
    },
    cloneIndependent: async () => {
      const b = new Response('shared');
      const c = b.clone();
      const bytes = new Uint8Array(await b.arrayBuffer());
      bytes[0] = 0;
      return c.text();
    },
  }),
  '/statics': () => ({
    json: async () => {
      const j = Response.json({ a: 1, b: 'é' }, { status: 201, headers: { 'X-K': 'v' } });
      return [j.status, j.headers.get('content-type'), j.headers.get('x-k'), await j.text()];
    },
    jsonOwnContentType: () => Response.json('x', { headers: { 'Content-Type': 'application/vnd+json' } }).headers.get('content-type'),
    jsonUndefined: () => err(() => Response.json(undefined)),
    jsonFunction: () => err(() => Response.json(() => 1)),
    jsonBigInt: () => err(() => Response.json(1n)),
    jsonCycle: () => {
      const o = {};
      o.o = o;
      return err(() => Response.json(o));
    },
    jsonNullBodyStatus: () => err(() => Response.json({}, { status: 204 })),
    redirect: async () => {
      const r = Response.redirect('https://a.example/x y', 307);
      return [r.status, r.headers.get('location'), r.ok, r.statusText, await r.text(), [...r.headers]];
    },
    redirectDefault: () => Response.redirect('http://a/').status,
    redirectStatuses: () => [301, 302, 303, 307, 308].map((s) => Response.redirect('http://a/', s).status),
    redirectBadStatus: () => err(() => Response.redirect('http://a/', 200)),
    redirectRelative: () => err(() => Response.redirect('/relative')),
    redirectUrlObject: () => Response.redirect(new URL('http://b/'), 302).headers.get('location'),
    error: () => {
      const e = Response.error();
      return [e.type, e.status, e.ok, e.statusText, [...e.headers], e.body];
    },
  }),
});
