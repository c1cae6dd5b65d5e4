// `isolet dev` with service bindings. With one config, a binding to the project's own worker (a
// named WorkerEntrypoint) is served in the same Runtime, with cloudflare:workers bundled as
// external. With more (`-c a -c b`, as wrangler runs several workers in one dev session), the
// first config's worker is served on the port and the others run beside it, reached through
// service bindings, each with its own vars and reloaded on its own when its files change. A
// binding to a worker of no config given fails at call time and says how to add it; two
// configs naming the same worker, or a broken second config, are errors that name the config.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, realpath, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess, writeProject } from './support/cli-process.ts';

const running: CliProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const dev of running) dev.kill();
  await Promise.all(running.map((dev) => dev.exited));
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-dev-services-')));
  dirs.push(dir);
  return dir;
}

const SHOP = {
  'shop/wrangler.toml': [
    'name = "shop"',
    'main = "src/index.ts"',
    'services = [',
    '  { binding = "SELF", service = "shop", entrypoint = "Prices" },',
    '  { binding = "AUTH", service = "auth-worker" },',
    '  { binding = "GONE", service = "nowhere" },',
    ']',
    '',
  ].join('\n'),
  'shop/src/index.ts': [
    "import { WorkerEntrypoint } from 'cloudflare:workers';",
    'export class Prices extends WorkerEntrypoint {',
    '  price(item: string): number { return item.length * 100; }',
    '}',
    'type Env = Record<"SELF" | "AUTH" | "GONE", { price(item: string): Promise<number>; fetch(input: string): Promise<Response>; who(): Promise<string> }>;',
    'const attempt = async (f: () => Promise<string>) => { try { return await f(); } catch (error) { return (error as Error).message; } };',
    'export default {',
    '  async fetch(request: Request, env: Env): Promise<Response> {',
    '    return Response.json({',
    '      price: await env.SELF.price(new URL(request.url).pathname),',
    '      auth: await attempt(async () => (await env.AUTH.fetch("https://auth/")).text()),',
    '      who: await attempt(() => env.AUTH.who()),',
    '      gone: await attempt(async () => (await env.GONE.fetch("https://gone/")).text()),',
    '    });',
    '  },',
    '};',
    '',
  ].join('\n'),
};

const authSource = (greeting: string) => [
  "import { WorkerEntrypoint } from 'cloudflare:workers';",
  'export default class extends WorkerEntrypoint<{ TEAM: string }> {',
  `  fetch() { return new Response('${greeting} from auth'); }`,
  '  who() { return this.env.TEAM; }',
  '}',
  '',
].join('\n');

const AUTH = {
  'auth/wrangler.toml': 'name = "auth-worker"\nmain = "src/index.ts"\n\n[vars]\nTEAM = "auth team"\n',
  'auth/src/index.ts': authSource('hello'),
};

test('isolet dev: a service binding to the worker itself is served; one to a worker of no config given fails and says how to add it', { timeout: 120_000 }, async () => {
  const cwd = await tempDir();
  await writeProject(cwd, SHOP);
  const dev = new CliProcess(['dev', '--port', '0'], { cwd: join(cwd, 'shop') });
  running.push(dev);
  const base = await dev.listening();
  const response = await fetch(`${base}/abc`);
  assert.equal(response.status, 200);
  const body = await response.json() as { price: number; auth: string };
  assert.equal(body.price, 400);
  assert.match(body.auth, /^env\.AUTH names the worker 'auth-worker', which is not running here\. Fix: .*In isolet dev, run it beside this one: isolet dev -c wrangler\.toml -c <the config of 'auth-worker'> \(the first config is the worker served\)\.$/);
  dev.child.kill('SIGTERM');
  assert.equal((await dev.exited).code, 0);
});

test('isolet dev -c a -c b: the first worker is served, the second reached through its service binding with its own vars, and reloaded on its own', { timeout: 180_000 }, async () => {
  const cwd = await tempDir();
  await writeProject(cwd, { ...SHOP, ...AUTH });
  const dev = new CliProcess(['dev', '--port', '0', '-c', 'wrangler.toml', '-c', '../auth/wrangler.toml'], { cwd: join(cwd, 'shop') });
  running.push(dev);
  const base = await dev.listening();
  assert.match(dev.stderr, /^also running auth-worker \(\.\.\/auth\/wrangler\.toml\), reached through service bindings$/m);
  const first = await (await fetch(`${base}/ab`)).json() as Record<string, unknown>;
  assert.equal(first.price, 300);
  assert.equal(first.auth, 'hello from auth');
  assert.equal(first.who, 'auth team', "the second worker's own vars");
  assert.match(first.gone as string, /^env\.GONE names the worker 'nowhere', which is not running here/);

  // A change to the second worker's source reloads it alone; the first keeps serving.
  const mark = dev.mark();
  await writeFile(join(cwd, 'auth', 'src', 'index.ts'), authSource('welcome'));
  await dev.waitFor('stdout', /^reloaded auth-worker in \d+ ms$/m, mark);
  const second = await (await fetch(`${base}/ab`)).json() as Record<string, unknown>;
  assert.equal(second.auth, 'welcome from auth');
  assert.doesNotMatch(dev.stdout.slice(mark.stdout), /^reloaded in/m, 'the first worker was not rebuilt');

  // One that does not build says which config it is, and the last version that loaded keeps running.
  const broken = dev.mark();
  await writeFile(join(cwd, 'auth', 'src', 'index.ts'), 'export default {');
  await dev.waitFor('stderr', /^\(auth-worker keeps running the last version that loaded\)$/m, broken);
  assert.match(dev.stderr.slice(broken.stderr), /^\.\.\/auth\/wrangler\.toml \(worker auth-worker\): /m);
  assert.equal((await (await fetch(`${base}/ab`)).json() as Record<string, unknown>).auth, 'welcome from auth');

  dev.child.kill('SIGTERM');
  assert.equal((await dev.exited).code, 0);
});

test('isolet dev with two configs of one worker name, or a second config that is broken, stops with an error that names the config', { timeout: 60_000 }, async () => {
  const cwd = await tempDir();
  await writeProject(cwd, { ...SHOP, ...AUTH, 'twin/wrangler.toml': 'name = "shop"\nmain = "../auth/src/index.ts"\n', 'bad/wrangler.toml': 'name = "bad"\nmian = "src/index.ts"\n' });
  const twin = new CliProcess(['dev', '--port', '0', '-c', 'shop/wrangler.toml', '-c', 'twin/wrangler.toml'], { cwd });
  const twinExit = await twin.exited;
  assert.equal(twinExit.code, 2, twin.stderr);
  assert.match(twin.stderr, /^isolet dev: shop\/wrangler\.toml and twin\/wrangler\.toml both name the worker 'shop'/m);
  const bad = new CliProcess(['dev', '--port', '0', '-c', 'shop/wrangler.toml', '-c', 'bad/wrangler.toml'], { cwd });
  const badExit = await bad.exited;
  assert.equal(badExit.code, 2, bad.stderr);
  assert.match(bad.stderr, /^isolet dev: bad\/wrangler\.toml: .*mian.*did you mean main/m);
});
