// `isolet deploy --dry-run` makes the checks the server makes of any deployment, the upload's
// loading included, without a server: a worker the real deploy refuses (a Durable Object class,
// crons without a scheduled handler, top-level code that throws) fails the dry run too, exit 1,
// with the place in the tenant's own source; a good one is bundled and not uploaded, exit 0.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess, writeProject } from './support/cli-process.ts';

let root = '';
before(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'isolet-dry-run-')));
});
after(() => rm(root, { recursive: true, force: true }));

async function dryRun(name: string, source: string, extraToml = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = join(root, name);
  await writeProject(dir, {
    'wrangler.toml': `name = "${name}"\nmain = "src/index.ts"\ncompatibility_date = "2025-06-01"\n${extraToml}`,
    'src/index.ts': source,
  });
  const cli = new CliProcess(['deploy', '--dry-run'], { cwd: dir });
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}

test('a worker exporting a Durable Object class fails the dry run as the deploy would, and nothing is uploaded', { timeout: 60_000 }, async () => {
  const out = await dryRun('counter', `import { DurableObject } from 'cloudflare:workers';
export class Counter extends DurableObject {}
export default { fetch: () => new Response('ok') };
`);
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /Durable Objects are not supported by isolet yet: the worker exports Counter/);
  assert.match(out.stderr, /isolet deploy: counter would not be deployed \(--dry-run: nothing was uploaded\)/);
  assert.equal(out.stdout, '');
});

test('crons without a scheduled handler, and top-level code that throws (at its place in the source), fail the dry run', { timeout: 60_000 }, async () => {
  const crons = await dryRun('nightly', `export default { fetch: () => new Response('ok') };\n`, '\n[triggers]\ncrons = ["0 3 * * *"]\n');
  assert.equal(crons.code, 1, crons.stderr);
  assert.match(crons.stderr, /scheduled/);
  const throws = await dryRun('broken', `const ready: boolean = false;
if (!ready) throw new Error('not configured');
export default { fetch: () => new Response('ok') };
`);
  assert.equal(throws.code, 1, throws.stderr);
  assert.match(throws.stderr, /src\/index\.ts:2:\d+: .*not configured/);
});

test('a worker the server would take passes: bundled, not uploaded, exit 0', { timeout: 60_000 }, async () => {
  const out = await dryRun('fine', `import { WorkerEntrypoint } from 'cloudflare:workers';
export class Api extends WorkerEntrypoint { hello() { return 'hi'; } }
export default { fetch: () => new Response('ok'), scheduled() {} };
`, '\n[triggers]\ncrons = ["0 3 * * *"]\n');
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^fine: bundled [\d.]+ (B|KiB), not uploaded \(--dry-run\)$/m);
});
