// `isolet dev` with service bindings: a binding to the project's own worker (a named
// WorkerEntrypoint) is served in the same Runtime, with cloudflare:workers bundled as external;
// a binding to a worker that is not part of the project fails at call time with the fix.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, realpath } from 'node:fs/promises';
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

test('isolet dev: a service binding to the worker itself is served; one to another worker fails and says how to run both', { timeout: 120_000 }, async () => {
  const cwd = await realpath(await mkdtemp(join(tmpdir(), 'isolet-dev-services-')));
  dirs.push(cwd);
  const files: Record<string, string> = {
    'wrangler.toml': [
      'name = "shop"',
      'main = "src/index.ts"',
      'services = [',
      '  { binding = "SELF", service = "shop", entrypoint = "Prices" },',
      '  { binding = "AUTH", service = "auth-worker" },',
      ']',
      '',
    ].join('\n'),
    'src/index.ts': [
      "import { WorkerEntrypoint } from 'cloudflare:workers';",
      'export class Prices extends WorkerEntrypoint {',
      '  price(item: string): number { return item.length * 100; }',
      '}',
      'interface Env { SELF: { price(item: string): Promise<number> }; AUTH: { fetch(input: string): Promise<Response> } }',
      'export default {',
      '  async fetch(request: Request, env: Env): Promise<Response> {',
      '    const price = await env.SELF.price(new URL(request.url).pathname);',
      '    let auth: string;',
      '    try { auth = await (await env.AUTH.fetch("https://auth/")).text(); } catch (error) { auth = (error as Error).message; }',
      '    return Response.json({ price, auth });',
      '  },',
      '};',
      '',
    ].join('\n'),
  };
  await writeProject(cwd, files);
  const dev = new CliProcess(['dev', '--port', '0'], { cwd });
  running.push(dev);
  const base = await dev.listening();
  const response = await fetch(`${base}/abc`);
  assert.equal(response.status, 200);
  const body = await response.json() as { price: number; auth: string };
  assert.equal(body.price, 400);
  assert.match(body.auth, /^env\.AUTH names the worker 'auth-worker', which is not running here\. Fix: .*isolet dev runs only its own worker: deploy both workers to an isolet server \(isolet deploy\), where they call each other, or stand in for 'auth-worker' while developing\.$/);
  dev.child.kill('SIGTERM');
  assert.equal((await dev.exited).code, 0);
});
