// fetch(): to an echo server the harness runs on 127.0.0.1 (its port arrives in X-Echo-Port).
// (Pending: fetch.)
import { probeRoutes, aerr } from './_probe.js';

export default probeRoutes({
  '/fetch': (request) => {
    const base = `http://127.0.0.1:${request.headers.get('x-echo-port')}`;
    return {
      get: async () => {
        const r = await fetch(`${base}/echo?x=1`);
        return [r.status, r.ok, r.headers.get('x-echo'), await r.json(), r.url, r.redirected];
      },
      post: async () => {
        const r = await fetch(`${base}/echo`, { method: 'POST', body: 'hello', headers: { 'X-Custom': 'c' } });
        const j = await r.json();
        return [j.method, j.body, j.headers['x-custom'], j.headers['content-type']];
      },
      requestObject: async () => (await fetch(new Request(`${base}/echo`, { method: 'PUT', body: 'r' }))).json(),
      redirectFollow: async () => {
        const r = await fetch(`${base}/redirect`);
        return [r.status, r.redirected, new URL(r.url).pathname];
      },
      redirectManual: async () => {
        const r = await fetch(`${base}/redirect`, { redirect: 'manual' });
        return [r.status, r.headers.get('location')];
      },
      status404: async () => (await fetch(`${base}/missing`)).status,
      badUrl: () => aerr(() => fetch('not a url')),
      badScheme: () => aerr(() => fetch('ftp://a/')),
      refused: () => aerr(() => fetch('http://127.0.0.1:1/')),
      abortBefore: () => aerr(() => fetch(`${base}/echo`, { signal: AbortSignal.abort() })),
      immutableHeaders: async () => {
        const r = await fetch(`${base}/echo`);
        try {
          r.headers.set('x', 'y');
          return 'mutable';
        } catch (e) {
          return [e.name, e.message];
        }
      },
      head: async () => {
        const r = await fetch(`${base}/echo`, { method: 'HEAD' });
        return [r.status, r.body === null, r.headers.get('content-length')];
      },
      statusText: async () => [(await fetch(`${base}/echo`)).statusText, (await fetch(`${base}/missing`)).statusText],
      postRedirect: async () => {
        const r = await fetch(`${base}/redirect`, { method: 'POST', body: 'gone', headers: { 'content-type': 'text/x', authorization: 'a' } });
        const j = await r.json();
        return [r.redirected, j.method, j.body, j.headers['content-type'], j.headers.authorization];
      },
      streamBody: async () => (await fetch(`${base}/echo`, { method: 'POST', body: new Response('abc').body })).json(),
      streamBodyRedirect: () => aerr(() => fetch(`${base}/redirect`, { method: 'PUT', body: new Response('abc').body })),
      hostHeaderIgnored: async () => (await (await fetch(`${base}/echo`, { headers: { host: 'evil.example' } })).json()).headers,
      redirectedClone: async () => {
        const c = (await fetch(`${base}/redirect`)).clone();
        return [new URL(c.url).search, c.redirected];
      },
      newResponseDropsUrl: async () => {
        const r = new Response((await fetch(`${base}/redirect`)).body, { status: 201 });
        return [r.url, r.redirected];
      },
      redirectError: () => aerr(() => fetch(`${base}/redirect`, { redirect: 'error' })),
      abortReason: () => aerr(() => fetch(`${base}/echo`, { signal: AbortSignal.abort('why') })),
      shape: () => [fetch.length, fetch.name, typeof fetch],
      streamedResponse: async () => {
        const r = await fetch(`${base}/echo`);
        const reader = r.body.getReader();
        const { value } = await reader.read();
        return value instanceof Uint8Array;
      },
    };
  },
});
