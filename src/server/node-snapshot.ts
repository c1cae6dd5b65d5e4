// What a node of a cluster serves, kept in its data directory: every worker's active version
// with its secrets, and the routes, as of a change counter. A node that starts while the
// database is away serves from it, and catches up from that counter once the database is
// back. It holds code and secrets, so it is sealed with the cluster's secrets key (AES-256-GCM)
// and written whole or not at all, mode 0600.

import { readFile, rename, writeFile } from 'node:fs/promises';
import type { SecretBox } from '../store/secret-box.ts';
import type { ActiveWorker, RouteInfo } from '../store/store.ts';

export interface NodeSnapshot {
  change: number;
  workers: ActiveWorker[];
  routes: RouteInfo[];
}

const CONTEXT = 'node-snapshot';

export async function writeSnapshot(path: string, box: SecretBox, snapshot: NodeSnapshot): Promise<void> {
  const text = box.sealText(JSON.stringify(snapshot), CONTEXT);
  const aside = `${path}.${process.pid}.tmp`;
  await writeFile(aside, text, { mode: 0o600 });
  await rename(aside, path);
}

/** The snapshot, or undefined when there is none; throws when it does not open with this key. */
export async function readSnapshot(path: string, box: SecretBox): Promise<NodeSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(box.openText(text, CONTEXT)) as NodeSnapshot;
}
