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
    noContentType: () => aerr(() => new Response(new Uint8Array([1])).formData()),
    iteration: () => {
      const f = new FormData();
      f.append('a', '1');
      f.append('b', '2');
      const seen = [];
      for (const [k] of f) { seen.push(k); if (k === 'a') f.append('c', '3'); }
      const it = f.entries();
      return [seen, [...f.keys()], [...f.values()], Object.prototype.toString.call(it), typeof it.next, Object.keys(Object.getPrototypeOf(it))];
    },
    forEach: () => {
      const f = new FormData();
      f.append('x', 'y');
      const out = [];
      f.forEach(function (v, k, self) { out.push([v, k, self === f, this]); }, 'T');
      return out;
    },
    setDelete: () => {
      const f = new FormData();
      f.append('a', '1'); f.append('b', '2'); f.append('a', '3');
      f.set('a', '4');
      const afterSet = [...f];
      f.delete('b');
      return [afterSet, [...f], f.get('zz'), f.getAll('zz')];
    },
    blobEntryDefaults: () => {
      const f = new FormData();
      f.append('b', new Blob(['x'], { type: 'a/b' }));
      const v = f.get('b');
      return [v.name, v.type, v instanceof File];
    },
    stringConversion: () => {
      const f = new FormData();
      f.append(1, 2);
      f.append('n', null);
      return [...f];
    },
    appendErrors: () => [err(() => new FormData().append('a')), err(() => new FormData().append('a', 'b', 'c')), err(() => new FormData({}))],
    multipartParse: async () => {
      const body = '--X\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n' +
        '--X\r\nContent-Disposition: form-data; name="f"; filename="n.bin"\r\n\r\nbytes\r\n' +
        '--X\r\nContent-Disposition: form-data; name="g"; filename="t.txt"\r\nContent-Type: Text/HTML\r\n\r\n<p>\r\n--X--\r\n';
      const f = await new Request('http://a/', { method: 'POST', body, headers: { 'content-type': 'multipart/form-data; boundary=X' } }).formData();
      const file = f.get('f');
      const g = f.get('g');
      return [f.get('a'), file.name, file.type, await file.text(), g.type, await g.text()];
    },
    multipartQuotedBoundary: async () => {
      const body = '--a b\r\nContent-Disposition: form-data; name="q"\r\n\r\nv\r\n--a b--';
      const f = await new Response(body, { headers: { 'content-type': 'multipart/form-data; boundary="a b"' } }).formData();
      return [...f];
    },
    multipartMalformed: async () => [
      await aerr(() => new Response('garbage', { headers: { 'content-type': 'multipart/form-data; boundary=X' } }).formData()),
      await aerr(() => new Response('--X\r\nContent-Disposition: form-data; name="a"\r\n\r\nno end', { headers: { 'content-type': 'multipart/form-data; boundary=X' } }).formData()),
      await aerr(() => new Response('--X\r\nContent-Disposition: form-data\r\n\r\nv\r\n--X--', { headers: { 'content-type': 'multipart/form-data; boundary=X' } }).formData()),
      await aerr(() => new Response('x', { headers: { 'content-type': 'multipart/form-data' } }).formData()),
    ],
    multipartEscapes: async () => {
      const f = new FormData();
      f.append('a"b\nc', 'v\nw');
      f.append('f', new File(['z'], 'q"r.txt'));
      const r = new Response(f);
      const text = await r.clone().text();
      const back = await r.formData();
      return [text.replace(/--[^\r]*/g, '--B'), [...back].map(([k, v]) => [k, typeof v === 'string' ? v : v.name])];
    },
    urlencodedCharset: async () => {
      const r = new Response('a=%C3%A9&b=+c&&d', { headers: { 'content-type': 'Application/X-WWW-Form-Urlencoded; charset=utf-8' } });
      return [...await r.formData()];
    },
    requestFormDataBody: async () => {
      const f = new FormData();
      f.append('k', 'v');
      const r = new Request('http://a/', { method: 'POST', body: f });
      const ct = r.headers.get('content-type');
      const text = await r.text();
      const boundary = ct.slice(ct.indexOf('boundary=') + 9);
      return [text === `--${boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\nv\r\n--${boundary}--\r\n` ? 'layout' : text.replaceAll(boundary, 'B')];
    },
    toStringTag: () => [Object.prototype.toString.call(new FormData()), Object.prototype.toString.call(new Blob([])), Object.prototype.toString.call(new File([], 'f'))],
  }),
  '/blob-more': () => ({
    textBom: async () => [...(await new Blob([new Uint8Array([0xef, 0xbb, 0xbf, 0x41])]).text())].map((c) => c.codePointAt(0)),
    sliceNegative: async () => [await new Blob(['abcdef']).slice(-2).text(), await new Blob(['abcdef']).slice(2, 1).text(), await new Blob(['abcdef']).slice(-100, 100).text(), new Blob(['abc']).slice(1).size],
    partsErrors: () => [err(() => new Blob('abc')), err(() => new Blob(5)), new Blob(undefined).size, new Blob([]).type],
    stringParts: async () => [await new Blob(['a\r\nb', 1, null, { toString: () => 'o' }]).text(), new Blob(['\ud800']).size],
    endings: async () => [await new Blob(['a\r\nb\rc'], { endings: 'native' }).text(), err(() => new Blob([], { endings: 'x' }))],
    // Near now, not equal to it: workerd's own File default and Date.now() can differ by a tick.
    fileDefaults: () => {
      const f = new File([], 'n');
      return [f.type, typeof f.lastModified, Math.abs(f.lastModified - Date.now()) < 60_000, f.name, new File([], 5).name];
    },
    fileLastModified: () => [new File([], 'a', { lastModified: 1.7 }).lastModified, new File([], 'a', { lastModified: -3 }).lastModified],
    typeCases: () => [new Blob([], { type: 'A/B; Charset=UTF-8' }).type, new Blob([], { type: 'a\u0001b' }).type, new Blob([], { type: 5 }).type],
    requestBlob: async () => {
      const b = await new Request('http://a/', { method: 'POST', body: 'xyz' }).blob();
      return [b.type, b.size, await b.text(), b instanceof Blob];
    },
    blobNoType: async () => {
      const r = new Response(new Blob(['q']));
      return [r.headers.get('content-type'), await r.text()];
    },
    blobNoContentType: async () => {
      const b = await new Response(new Uint8Array([1, 2])).blob();
      return [b.type, b.size];
    },
    structuredCloneBlob: () => {
      try {
        const c = structuredClone(new Blob(['a']));
        return ['cloned', Object.prototype.toString.call(c)];
      } catch (e) {
        return err(() => { throw e; });
      }
    },
    structuredCloneFile: () => {
      try {
        const c = structuredClone(new File(['ab'], 'n.txt', { type: 't/x', lastModified: 9 }));
        return [Object.prototype.toString.call(c), c.name, c.type, c.lastModified, c.size];
      } catch (e) {
        return err(() => { throw e; });
      }
    },
    structuredCloneFormData: () => err(() => structuredClone(new FormData())),
    endingsTransparent: () => err(() => new Blob(['a'], { endings: 'transparent' }).size),
    jsonBom: async () => aerr(() => new Response(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])).json()),
    blobJsonBom: async () => {
      const b = await new Response(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).blob();
      return [b.size, [...await b.text()].length];
    },
    legacyStream: () => {
      const d = new TextDecoder('shift_jis');
      const bytes = [0x82, 0xa0, 0x82, 0xa2, 0x41];
      return bytes.map((b) => d.decode(new Uint8Array([b]), { stream: true })).concat(d.decode());
    },
    legacyFatal: () => [err(() => new TextDecoder('shift_jis', { fatal: true }).decode(new Uint8Array([0x82]))), new TextDecoder('utf-16be').decode(new Uint8Array([0xfe, 0xff, 0, 0x41])), new TextDecoder('utf-16le', { ignoreBOM: true }).decode(new Uint8Array([0xff, 0xfe, 0x41, 0])).length],
    legacyLabels: () => ['x-user-defined', 'gb18030', 'big5', 'euc-jp', 'iso-2022-jp', 'euc-kr', 'koi8-r', 'macintosh', 'ascii', 'utf-16', ' ISO-8859-15 '].map((l) => { try { return new TextDecoder(l).encoding; } catch (e) { return `throws ${e.constructor.name}`; } }),
    xUserDefined: () => [...new TextDecoder('x-user-defined').decode(new Uint8Array([0x41, 0x80, 0xff]))].map((c) => c.codePointAt(0)),
    decoderStreamLegacy: async () => {
      const s = new Blob([new Uint8Array([0x82, 0xa0, 0x82])]).stream().pipeThrough(new TextDecoderStream('shift_jis'));
      let out = '';
      for await (const chunk of s) out += chunk;
      return [...out].map((c) => c.codePointAt(0));
    },
  }),
  '/urlpattern': () => ({
    exists: () => typeof URLPattern,
    basic: () => {
      const p = new URLPattern({ pathname: '/books/:id' });
      const m = p.exec('https://example.com/books/123');
      return [p.test('https://example.com/books/123'), m.pathname.groups, p.pathname, p.protocol];
    },
    stringPattern: () => {
      const p = new URLPattern('https://*.example.com/a/:x(\\d+)?');
      return [p.test('https://www.example.com/a/12'), p.test('https://www.example.com/a/b'), p.hostname, p.pathname];
    },
    baseURL: () => {
      const p = new URLPattern('/x/*', 'https://h.test');
      return [p.exec('https://h.test/x/y/z').pathname.groups, p.protocol, p.hostname];
    },
    noMatch: () => new URLPattern({ pathname: '/a' }).exec('https://e.com/b'),
    badPattern: () => err(() => new URLPattern({ pathname: '/(' })),
    input: () => {
      const r = new URLPattern({ pathname: '/p/:n' }).exec({ pathname: '/p/7' });
      return [r.inputs, r.pathname];
    },
    ignoreCase: () => new URLPattern({ pathname: '/A' }, { ignoreCase: true }).test({ pathname: '/a' }),
    hasRegExpGroups: () => [new URLPattern({ pathname: '/(\\d+)' }).hasRegExpGroups, new URLPattern({ pathname: '/:a' }).hasRegExpGroups],
    toStringTag: () => Object.prototype.toString.call(new URLPattern({})),
  }),
});
