// Where a worker runs: in one process of its account's tier, chosen by rendezvous hashing, so
// a worker's home stays put while it lives and tenants of different tiers never share a
// process. Each tier has its own processes: `default` for ordinary accounts, `trusted` for
// accounts the operator vouches for (kept apart from strangers' code), `quarantine` for accounts
// whose code crashed a process (kept apart from everyone else's).
//
// Code nobody has seen run yet has processes of its own too: a default-tier worker's version
// is checked at deploy and serves its first requests in the `untried` processes, which run at
// a lower CPU priority, and moves to its home once they ended cleanly. Code that loops, blows
// its memory or crashes V8 from its first request on so never shares a process, or a core on
// equal terms, with tenants that are serving.

import { createHash } from 'node:crypto';

export const TIERS = ['default', 'trusted', 'quarantine'] as const;

export type Tier = (typeof TIERS)[number];

/** The processes of code not yet seen to run cleanly (not a tier an account can be given). */
export const UNTRIED = 'untried';

/** What a runtime process serves: one tier's accounts, or untried code. */
export type ProcessTier = Tier | typeof UNTRIED;

/** Requests a new version must end cleanly in the untried processes before it moves to its home (default). */
export const UNTRIED_REQUESTS = 1;

/**
 * The niceness of untried processes (0 is everyone else's, 19 the lowest priority): under
 * contention Linux gives them about a tenth of the CPU time of a process serving proven code.
 */
export const UNTRIED_NICE = 10;

export function isTier(value: unknown): value is Tier {
  return typeof value === 'string' && (TIERS as readonly string[]).includes(value);
}

/**
 * The index, from 0 to `size - 1`, of the worker's home among its tier's processes: the one
 * whose hash with the worker's name scores highest. Adding a process moves only the workers
 * that now score highest on it.
 */
export function homeIndex(worker: string, tier: ProcessTier, size: number): number {
  return bestOf(worker, tier, 0, -1n, 0, size);
}

/**
 * homeIndex(worker, tier, size) for a worker whose home was `home` among the first `before`
 * processes: only the processes added since can take it, so this hashes `size - before + 1`
 * times where homeIndex hashes `size` times. A tier that grows re-homes every worker it holds,
 * and with 60,000 of them over 30 processes the full count held the control process's thread
 * for seconds.
 */
export function homeAfterGrowth(worker: string, tier: ProcessTier, home: number, before: number, size: number): number {
  return bestOf(worker, tier, home, score(worker, tier, home), before, size);
}

/** The highest scoring of `best` (scoring `bestScore`) and the processes from `from` to `size - 1`; the lower index wins a tie. */
function bestOf(worker: string, tier: ProcessTier, best: number, bestScore: bigint, from: number, size: number): number {
  for (let index = from; index < size; index++) {
    const scored = score(worker, tier, index);
    if (scored > bestScore) {
      best = index;
      bestScore = scored;
    }
  }
  return best;
}

function score(worker: string, tier: ProcessTier, index: number): bigint {
  return createHash('sha256').update(`${tier}\0${index}\0${worker}`).digest().readBigUInt64BE(0);
}
