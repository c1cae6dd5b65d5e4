// The shipped front (deploy/haproxy.cfg, run as is) over three nodes: each host always reaches
// the same node, hosts spread over all three, a node that leaves moves only its own hosts, and
// a deployed worker answers through the front.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './support/free-port.ts';
import { TestPostgres } from './support/postgres.ts';
import { startNode, stopNode, type ClusterNode } from './support/cluster.ts';
import { ROOT } from './support/cli-process.ts';
import { hostFetch } from './support/serve.ts';
import { textWorker } from './server-support.ts';

const postgres = new TestPostgres();
let nodes: ClusterNode[] = [];
let haproxy: ChildProcess | undefined;

after(async () => {
  haproxy?.kill('SIGKILL');
  await Promise.all(nodes.map(stopNode));
  await postgres.close();
});

function haproxyBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v haproxy || ls /usr/sbin/haproxy'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (!found) throw new Error('HAProxy is needed for the front test and was not found: install it (Debian: apt-get install -y haproxy).');
  return found;
}

/** Which node answered /healthz for this host through the front (no worker has these hosts). */
async function home(front: number, host: string): Promise<string> {
  const response = await hostFetch(front, host, '/healthz');
  assert.equal(response.status, 200, `${host}: ${response.status}`);
  return String(((await response.json()) as { node: string }).node);
}

test('HAProxy with consistent hashing on Host keeps each tenant on its home node, and moves only a departed node\'s tenants', { timeout: 180_000 }, async () => {
  const binary = haproxyBinary();
  const database = await postgres.database();
  nodes = await Promise.all(['a', 'b', 'c'].map((id) => startNode(database, id)));
  const front = await freePort();
  const env = {
    ...process.env,
    ISOLET_FRONT: `127.0.0.1:${front}`,
    ISOLET_NODE_A: `127.0.0.1:${nodes[0]!.port}`,
    ISOLET_NODE_B: `127.0.0.1:${nodes[1]!.port}`,
    ISOLET_NODE_C: `127.0.0.1:${nodes[2]!.port}`,
  };
  let output = '';
  haproxy = spawn(binary, ['-db', '-f', join(ROOT, 'deploy', 'haproxy.cfg')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.on('data', (chunk) => (output += chunk));
  haproxy.stderr!.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + 30_000;
  while (!(await home(front, 'ready.localhost').then(() => true, () => false))) {
    if (haproxy.exitCode !== null || Date.now() > deadline) assert.fail(`HAProxy did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const hosts = Array.from({ length: 30 }, (_, i) => `tenant${i}.localhost`);
  const homes = new Map<string, string>();
  for (const host of hosts) homes.set(host, await home(front, host));
  for (let round = 0; round < 3; round++) {
    for (const host of hosts) assert.equal(await home(front, host), homes.get(host), `${host} stays on its home node`);
  }
  assert.deepEqual([...new Set(homes.values())].sort(), ['a', 'b', 'c'], 'hosts spread over every node');

  // A worker answers through the front, from its home node.
  assert.equal((await nodes[0]!.api('POST', '/v1/accounts', { name: 'acme' })).status, 201);
  assert.equal((await nodes[0]!.api('PUT', '/v1/workers/hello?account=acme', textWorker('hello'))).status, 201);
  const until = Date.now() + 20_000;
  for (;;) {
    const answer = await hostFetch(front, 'hello.localhost', '/');
    if (answer.status === 200 && (await answer.text()) === 'hello') break;
    assert.ok(Date.now() < until, 'the worker answers through the front');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  // Node b leaves: its hosts move to a or c; nobody else's move.
  const b = nodes[1]!;
  await stopNode(b);
  nodes = nodes.filter((node) => node !== b);
  for (const host of hosts) {
    const moved = await home(front, host);
    if (homes.get(host) === 'b') assert.notEqual(moved, 'b');
    else assert.equal(moved, homes.get(host), `${host} did not move`);
  }
});
