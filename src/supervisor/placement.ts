// Where a worker runs: in one process of its account's tier, chosen by rendezvous hashing, so
// a worker's home stays put while it lives and tenants of different tiers never share a
// process. Each tier has its own processes: `default` for ordinary accounts, `trusted` for
// accounts the operator vouches for (kept apart from strangers' code), `quarantine` for accounts
// whose code crashed a process (kept apart from everyone else's).

import { createHash } from 'node:crypto';

export const TIERS = ['default', 'trusted', 'quarantine'] as const;

export type Tier = (typeof TIERS)[number];

export function isTier(value: unknown): value is Tier {
  return typeof value === 'string' && (TIERS as readonly string[]).includes(value);
}

/**
 * The index, from 0 to `size - 1`, of the worker's home among its tier's processes: the one
 * whose hash with the worker's name scores highest. Adding a process moves only the workers
 * that now score highest on it.
 */
export function homeIndex(worker: string, tier: Tier, size: number): number {
  let best = 0;
  let bestScore = -1n;
  for (let index = 0; index < size; index++) {
    const score = createHash('sha256').update(`${tier}\0${index}\0${worker}`).digest().readBigUInt64BE(0);
    if (score > bestScore) {
      best = index;
      bestScore = score;
    }
  }
  return best;
}
