// Test support for clusters: `isolet serve --database` nodes as child processes on loopback, each
// with its own data directory and the cluster's one admin token and secrets key.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ServeProcess, callApi, type ApiAnswer } from '../server-support.ts';
import { hostFetch } from './serve.ts';

/** The cluster's secrets key, given to every node. */
export const CLUSTER_SECRETS_KEY = randomBytes(32).toString('base64');

export interface ClusterNode {
  id: string;
  process: ServeProcess;
  port: number;
  admin: string;
  dataDir: string;
  api(method: string, path: string, body?: unknown): Promise<ApiAnswer>;
  /** GET a path with the given Host on this node's data plane; the body as text. */
  get(host: string, path?: string): Promise<{ status: number; text: string }>;
  health(): Promise<Record<string, unknown>>;
}

/** A node with a new data directory, or the given one (a node started again). */
export async function startNode(database: string, id: string, extraArgs: string[] = [], dataDirOf?: string): Promise<ClusterNode> {
  const dataDir = dataDirOf ?? (await mkdtemp(join(tmpdir(), `isolet-node-${id}-`)));
  // Workers in the node's own process: these tests are about the cluster, and three nodes with
  // runtime processes each would crowd a 2-core machine.
  const process = new ServeProcess(dataDir, { ISOLET_SECRETS_KEY: CLUSTER_SECRETS_KEY, ISOLET_DATABASE_URL: database }, [
    '--node-id', id, '--processes', '0', '--max-cpu-ms', '2000', ...extraArgs,
  ]);
  const { port, admin } = await process.ready();
  return {
    id,
    process,
    port,
    admin,
    dataDir,
    api: (method, path, body) => callApi(admin, method, path, { body }),
    async get(host, path = '/') {
      const response = await hostFetch(port, host, path);
      return { status: response.status, text: await response.text() };
    },
    async health() {
      return (await hostFetch(port, `127.0.0.1:${port}`, '/healthz')).json() as Promise<Record<string, unknown>>;
    },
  };
}

/** Stops the node gracefully and starts it again on the same data directory (new ports). */
export async function restartNode(database: string, node: ClusterNode): Promise<ClusterNode> {
  node.process.kill('SIGTERM');
  await node.process.exited;
  return startNode(database, node.id, [], node.dataDir);
}

export async function stopNode(node: ClusterNode): Promise<void> {
  node.process.kill('SIGTERM');
  const exited = await Promise.race([node.process.exited, new Promise((resolve) => setTimeout(resolve, 15_000, undefined))]);
  if (exited === undefined) {
    node.process.kill('SIGKILL');
    await node.process.exited;
  }
  await rm(node.dataDir, { recursive: true, force: true });
}

/**
 * Polls the node until `host` answers `status` with `text` (a string or a test of the body);
 * fails after `timeoutMs` with what it answered last. A bound for a loaded machine, not a
 * measure of speed (bench/cluster.ts measures that).
 */
export async function waitServes(node: ClusterNode, host: string, status: number, text?: string | RegExp, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const answer = await node.get(host);
      last = `${answer.status} ${answer.text.slice(0, 200)}`;
      const matches = text === undefined || (typeof text === 'string' ? answer.text === text : text.test(answer.text));
      if (answer.status === status && matches) return;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) throw new Error(`node ${node.id}: ${host} did not answer ${status} ${String(text ?? '')} within ${timeoutMs} ms; last: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
