// FormData, and bodies made of or read as form data, in a worker through real HTTP: the worker
// parses multipart/form-data and urlencoded uploads that Node's fetch (undici) encodes, and its
// multipart responses are read back here by undici's parser. Where workerd differs from the
// specs (test/conformance/workers/formdata.js probes it), isolet follows workerd: a Blob entry
// is named after its field, a multipart file keeps its Content-Type as written (or ''), names
// keep their %22/%0A/%0D escapes, and the body ends at the close delimiter with no CRLF.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const WORKER = `
const name = (e) => e && e.constructor ? e.constructor.name : String(e);
export default {
  async fetch(request) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case '/echo-form': {
        try {
          const form = await request.formData();
          const out = [];
          for (const [k, v] of form) out.push(typeof v === 'string' ? [k, v] : [k, { name: v.name, type: v.type, size: v.size, text: v.size < 1000 ? await v.text() : null, file: v instanceof File }]);
          return Response.json(out);
        } catch (e) {
          return Response.json({ error: name(e), message: e.message }, { status: 400 });
        }
      }
      case '/make-form': {
        const form = new FormData();
        form.append('greeting', 'héllo');
        form.append('upload', new File([new Uint8Array([0, 1, 2, 255])], 'data.bin', { type: 'application/x-test' }));
        form.append('blob', new Blob(['b']));
        return new Response(form);
      }
      case '/methods': {
        const f = new FormData();
        f.append('a', '1'); f.append('b', '2'); f.append('a', '3');
        const steps = [f.get('a'), f.getAll('a'), f.has('b'), f.has('z'), f.get('z')];
        f.set('a', '9');
        steps.push([...f]);
        f.delete('b');
        steps.push([...f.keys()], [...f.values()]);
        const seen = [];
        f.forEach((v, k) => seen.push(k + '=' + v));
        steps.push(seen, Object.prototype.toString.call(f), Object.prototype.toString.call(f.entries()));
        return Response.json(steps);
      }
      case '/roundtrip': {
        const f = new FormData();
        f.append('t', 'line1\\nline2');
        f.append('f', new File(['content'], 'x.txt', { type: 'text/plain' }));
        const r = new Request('http://x/', { method: 'POST', body: f });
        const back = await r.formData();
        const file = back.get('f');
        return Response.json([r.headers.get('content-type').startsWith('multipart/form-data; boundary='), back.get('t'), file.name, file.type, await file.text()]);
      }
      case '/errors': {
        const bad = (ct, body = 'x') => new Response(body, ct === null ? {} : { headers: { 'content-type': ct } }).formData().then(() => 'ok', (e) => name(e));
        return Response.json([
          await bad('text/plain'),
          await bad(null, new Uint8Array([1])),
          await bad('multipart/form-data'),
          await bad('multipart/form-data; boundary=X', 'garbage'),
          await bad('multipart/form-data; boundary=X', '--X\\r\\nContent-Disposition: form-data; name="a"\\r\\n\\r\\nno close'),
          await bad('multipart/form-data; boundary=X', '--X\\r\\nContent-Disposition: form-data\\r\\n\\r\\nv\\r\\n--X--'),
          await bad('application/x-www-form-urlencoded', 'a=1'),
        ]);
      }
      case '/used': {
        const r = new Response('a=1', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        await r.formData();
        return Response.json([r.bodyUsed, await r.formData().then(() => 'ok', (e) => name(e))]);
      }
    }
    return new Response('not found', { status: 404 });
  },
};
`;

let served: Served;
before(async () => { served = await serve({ forms: moduleWorker(WORKER) }); });
after(() => served.close());

/** POST `body` as undici encodes it (served.fetch sends bytes: the encoding happens here). */
async function post(path: string, body: FormData | URLSearchParams): Promise<Response> {
  const encoded = new Request('http://x/', { method: 'POST', body });
  const bytes = new Uint8Array(await encoded.arrayBuffer());
  return served.fetch('forms', path, { method: 'POST', body: bytes, headers: { 'content-type': encoded.headers.get('content-type')! } });
}

test('a worker parses a multipart upload made by undici, text fields and files', async () => {
  const form = new FormData();
  form.append('name', 'isolet ✓');
  form.append('file', new File(['file body'], 'notes.txt', { type: 'text/plain' }));
  form.append('empty', new File([], 'e.bin'));
  const response = await post('/echo-form', form);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), [
    ['name', 'isolet ✓'],
    ['file', { name: 'notes.txt', type: 'text/plain', size: 9, text: 'file body', file: true }],
    ['empty', { name: 'e.bin', type: 'application/octet-stream', size: 0, text: '', file: true }],
  ]);
});

test('a worker parses an application/x-www-form-urlencoded upload', async () => {
  const response = await post('/echo-form', new URLSearchParams({ a: '1 2', é: '&' }));
  assert.deepEqual(await response.json(), [['a', '1 2'], ['é', '&']]);
});

test('a large multipart upload arrives whole', async () => {
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
  const form = new FormData();
  form.append('big', new File([big], 'big.bin'));
  form.append('after', 'tail');
  const response = await post('/echo-form', form);
  const [[, file], after] = await response.json() as [[string, { size: number }], [string, string]];
  assert.equal(file.size, big.byteLength);
  assert.deepEqual(after, ['after', 'tail']);
});

test('new Response(formData) is multipart/form-data that undici parses back', async () => {
  const response = await served.fetch('forms', '/make-form');
  assert.match(response.headers.get('content-type')!, /^multipart\/form-data; boundary=[!-~]+$/);
  const form = await response.formData();
  assert.equal(form.get('greeting'), 'héllo');
  const upload = form.get('upload') as File;
  assert.equal(upload.name, 'data.bin');
  assert.equal(upload.type, 'application/x-test');
  assert.deepEqual([...new Uint8Array(await upload.arrayBuffer())], [0, 1, 2, 255]);
  // workerd names a Blob entry after its field (the spec says "blob").
  assert.equal((form.get('blob') as File).name, 'blob');
});

test('FormData methods and iteration', async () => {
  const response = await served.fetch('forms', '/methods');
  assert.deepEqual(await response.json(), [
    '1', ['1', '3'], true, false, null,
    [['a', '9'], ['b', '2']],
    ['a'], ['9'],
    ['a=9'], '[object FormData]', '[object EntryIterator]',
  ]);
});

test('a FormData request body round-trips through formData()', async () => {
  const response = await served.fetch('forms', '/roundtrip');
  assert.deepEqual(await response.json(), [true, 'line1\nline2', 'x.txt', 'text/plain', 'content']);
});

test('formData() errors are TypeErrors, as in workerd', async () => {
  const response = await served.fetch('forms', '/errors');
  assert.deepEqual(await response.json(), ['TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError', 'ok']);
  const upload = await served.fetch('forms', '/echo-form', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
  assert.equal(upload.status, 400);
  assert.equal(((await upload.json()) as { error: string }).error, 'TypeError');
});

test('formData() uses the body', async () => {
  const response = await served.fetch('forms', '/used');
  assert.deepEqual(await response.json(), [true, 'TypeError']);
});
