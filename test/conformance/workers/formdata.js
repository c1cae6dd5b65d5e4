// FormData, Blob, File: construction, multipart and urlencoded bodies. (Pending: FormData/Blob.)
import { probeRoutes, err, aerr } from './_probe.js';

export default probeRoutes({
  '/blob': () => ({
    basic: async () => {
      const b = new Blob(['ab', new Uint8Array([99]), new Blob(['d'])], { type: 'Text/Plain' });
      return [b.size, b.type, await b.text()];
    },
    slice: async () => [await new Blob(['hello']).slice(1, -1).text(), new Blob(['x']).slice(0, 1, 'a/b').type],
    arrayBuffer: async () => new Blob(['ab']).arrayBuffer(),
    bytes: async () => (typeof Blob.prototype.bytes === 'function' ? new Blob(['ab']).bytes() : 'no bytes()'),
    stream: async () => (await new Response(new Blob(['s']).stream()).text()),
    badType: () => new Blob(['x'], { type: 'é' }).type,
    file: () => {
      const f = new File(['x'], 'a.txt', { type: 'text/plain', lastModified: 5 });
      return [f.name, f.size, f.type, f.lastModified, f instanceof Blob];
    },
    fileNoName: () => err(() => new File(['x'])),
    responseBlob: async () => {
      const b = await new Response('x', { headers: { 'content-type': 'a/b' } }).blob();
      return [b.type, b.size];
    },
    blobBody: async () => {
      const r = new Response(new Blob(['x'], { type: 'c/d' }));
      return [r.headers.get('content-type'), await r.text()];
    },
  }),
  '/formdata': () => ({
    basic: () => {
      const f = new FormData();
      f.append('a', '1');
      f.append('a', '2');
      f.set('b', '3');
      return [f.get('a'), f.getAll('a'), f.has('b'), [...f]];
    },
    fileEntry: () => {
      const f = new FormData();
      f.append('f', new Blob(['x']), 'name.txt');
      const v = f.get('f');
      return [v instanceof File, v.name, v.size];
    },
    urlencodedBody: async () => {
      const f = await new Request('http://a/', { method: 'POST', body: 'a=1&b=%20', headers: { 'content-type': 'application/x-www-form-urlencoded' } }).formData();
      return [...f];
    },
    multipartRoundTrip: async () => {
      const f = new FormData();
      f.append('t', 'text');
      f.append('f', new File(['content'], 'x.txt', { type: 'text/plain' }));
      const r = new Response(f);
      const ct = r.headers.get('content-type');
      const back = await r.formData();
      const file = back.get('f');
      return [ct.startsWith('multipart/form-data; boundary='), back.get('t'), file.name, file.type, await file.text()];
    },
    badBody: () => aerr(() => new Response('x', { headers: { 'content-type': 'text/plain' } }).formData()),
  }),
});
