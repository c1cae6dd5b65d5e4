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
      streamedResponse: async () => {
        const r = await fetch(`${base}/echo`);
        const reader = r.body.getReader();
        const { value } = await reader.read();
        return value instanceof Uint8Array;
      },
    };
  },
});
