// `isolet serve --examples` (what `npm start` runs): an empty store gets the package's example
// workers, each answering on its own host at once; a restart on the same data dir deploys
// nothing again; an example that fails is reported and the others serve.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServeProcess, callApi } from './server-support.ts';
import { hostFetch } from './support/serve.ts';

const processes: ServeProcess[] = [];
const dirs: string[] = [];

after(async () => {
  for (const p of processes) p.kill();
  await Promise.all(processes.map((p) => p.exited));
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function serve(dataDir: string, args: string[]): ServeProcess {
  const p = new ServeProcess(dataDir, {}, args);
  processes.push(p);
  return p;
}

/**
 * The first answer of a new isolate, which compiles the code it runs: Hono's router and handlers
 * cost 10-20 ms of CPU on a quiet machine and several times that on a loaded one, where the 50 ms
 * default limit can end it (1102, and the isolate with it). Such a refusal is sent again, at most
 * twice; any other answer is returned as it is.
 */
async function firstAnswer(port: number, host: string, path: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const response = await hostFetch(port, host, path);
    const text = await response.text();
    if (attempt === 2 || response.status !== 503 || !text.includes('exceeded CPU time limit')) return text;
  }
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'isolet-examples-'));
  dirs.push(dir);
  return dir;
}

async function stop(p: ServeProcess): Promise<void> {
  p.kill('SIGTERM');
  assert.deepEqual(await p.exited, { code: 0, signal: null });
}

type Version = { id: string; number: number; hash: string; active: boolean };

async function versionsOf(admin: string, workers: string[]): Promise<Record<string, Version[]>> {
  const out: Record<string, Version[]> = {};
  for (const worker of workers) {
    const answer = await callApi(admin, 'GET', `/v1/workers/${worker}/versions`);
    assert.equal(answer.status, 200, answer.text);
    out[worker] = answer.body;
  }
  return out;
}

test('--examples deploys the examples into an empty store, and a restart deploys none again', { timeout: 120_000 }, async () => {
  const dataDir = await tempDir();
  const first = serve(dataDir, ['--examples']);
  const { port, admin } = await first.ready();
  const hello = await first.waitFor('stdout', /"message":"example hello → http:\/\/hello\.localhost:(\d+)\/"/);
  const hono = await first.waitFor('stdout', /"message":"example hono → http:\/\/hono\.localhost:(\d+)\/"/);
  assert.equal(Number(hello[1]), port, 'the line names the real data-plane port');
  assert.equal(Number(hono[1]), port);
  assert.doesNotMatch(first.stderr, /example .* failed/);

  // hello: plain text, a path param with the GREETING var from its wrangler.toml, a streamed echo.
  const root = await hostFetch(port, `hello.localhost:${port}`, '/');
  assert.equal(root.status, 200);
  assert.equal(await root.text(), 'Hello from isolet!\n');
  const greet = await hostFetch(port, 'hello.localhost', '/hello/you');
  assert.equal(((await greet.json()) as { greeting: string }).greeting, 'Hello, you!');
  const echo = await hostFetch(port, 'hello.localhost', '/echo', { method: 'POST', body: 'some text' });
  assert.equal(await echo.text(), 'some text');

  // hono: vars, params, JSON in and out, the middleware's header, onError and notFound.
  assert.equal(await firstAnswer(port, 'hono.localhost', '/'), 'Hello from Hono on isolet!\n');
  const user = await hostFetch(port, 'hono.localhost', '/users/42', { headers: { 'x-request-id': 'req-1' } });
  assert.equal(user.status, 200);
  assert.equal(user.headers.get('x-request-id'), 'req-1');
  assert.deepEqual(await user.json(), { id: 42, name: 'user 42' });
  const todo = await hostFetch(port, 'hono.localhost', '/todos', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'write docs' }),
  });
  assert.equal(todo.status, 201);
  assert.equal(((await todo.json()) as { title: string }).title, 'write docs');
  const badTodo = await hostFetch(port, 'hono.localhost', '/todos', { method: 'POST', body: 'not json' });
  assert.equal(badTodo.status, 400);
  assert.match(((await badTodo.json()) as { error: string }).error, /JSON/);
  const broken = await hostFetch(port, 'hono.localhost', '/error');
  assert.equal(broken.status, 500);
  assert.equal(((await broken.json()) as { error: string }).error, 'internal error');
  const missing = await hostFetch(port, 'hono.localhost', '/users/abc');
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: 'no route for GET /users/abc' });

  // One JSON line per request stays on stdout.
  await first.waitFor('stdout', /^\{.*"worker":"hono".*"type":"request".*"url":"http:\/\/hono\.localhost\/users\/42","status":200/m);

  const workers = await callApi(admin, 'GET', '/v1/workers?account=examples');
  assert.equal(workers.status, 200, workers.text);
  assert.deepEqual(
    workers.body.map((w: { name: string; account: string }) => [w.name, w.account]),
    [
      ['hello', 'examples'],
      ['hono', 'examples'],
    ],
  );
  const before = await versionsOf(admin, ['hello', 'hono']);
  for (const versions of Object.values(before)) assert.equal(versions.length, 1);
  await stop(first);

  const second = serve(dataDir, ['--examples']);
  const again = await second.ready();
  await second.waitFor('stdout', /"message":"examples not deployed: the store already has 2 workers/);
  assert.doesNotMatch(second.stdout, /"message":"example \w+ →/);
  assert.deepEqual(await versionsOf(again.admin, ['hello', 'hono']), before);
  const served = await hostFetch(again.port, 'hello.localhost', '/');
  assert.equal(await served.text(), 'Hello from isolet!\n');
  await stop(second);
});

test('--examples <dir>: an example that fails is reported, the others serve', { timeout: 120_000 }, async () => {
  const examples = await tempDir();
  await mkdir(join(examples, 'good'));
  await writeFile(join(examples, 'good', 'index.ts'), 'export default { fetch: () => new Response("good") };\n');
  await mkdir(join(examples, 'broken'));
  await writeFile(join(examples, 'broken', 'worker.ts'), 'export default { fetch( };\n');
  await mkdir(join(examples, 'named'));
  await writeFile(join(examples, 'named', 'wrangler.jsonc'), '{ "name": "renamed", "main": "src/main.ts", "vars": { "WHO": "config" } }\n');
  await mkdir(join(examples, 'named', 'src'));
  await writeFile(join(examples, 'named', 'src', 'main.ts'), 'export default { fetch: (_r: Request, env: { WHO: string }) => new Response(env.WHO) };\n');
  await writeFile(join(examples, 'README.md'), 'not a folder: ignored\n');

  const dataDir = await tempDir();
  const p = serve(dataDir, ['--examples', examples]);
  const { port } = await p.ready();
  await p.waitFor('stdout', /"message":"example good → http:\/\/good\.localhost:\d+\/"/);
  await p.waitFor('stdout', /"message":"example renamed → http:\/\/renamed\.localhost:\d+\/"/);
  await p.waitFor('stderr', /"level":"error".*"message":"example broken failed, not deployed \(.*broken\): worker\.ts:1:\d+: /);
  assert.equal(await (await hostFetch(port, 'good.localhost', '/')).text(), 'good');
  assert.equal(await (await hostFetch(port, 'renamed.localhost', '/')).text(), 'config');
  assert.equal((await hostFetch(port, 'broken.localhost', '/')).status, 404);
  await stop(p);
});

test('--examples with a directory that does not exist is a usage error', { timeout: 60_000 }, async () => {
  const dataDir = await tempDir();
  const p = serve(dataDir, ['--examples', join(dataDir, 'nowhere')]);
  assert.equal((await p.exited).code, 2);
  assert.match(p.stderr, /--examples: no such directory/);
});
