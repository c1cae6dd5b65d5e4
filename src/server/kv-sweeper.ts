// Removes expired KV entries now and then. They are invisible from their expiration on
// (kv-store.ts); this gives their space back. On a cluster every node sweeps: each round is a
// bounded delete that another node's round at the same moment only makes shorter.

import { nowSeconds } from '../bindings/kv/kv-rules.ts';
import type { KvStore } from '../store/kv-store.ts';
import type { ServerLog } from './logger.ts';

/** Entries removed in one statement, and rounds in one sweep: a backlog is cleared over several sweeps. */
const BATCH = 1000;
const ROUNDS = 10;

export function startKvSweeper(kv: KvStore, log: ServerLog, everyMs = 60_000): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const sweep = async () => {
    let removed = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const count = await kv.sweepExpired(nowSeconds(), BATCH);
        removed += count;
        if (count < BATCH) break;
      }
    } catch (error) {
      // The database may be away (a cluster's outage): the next sweep tries again.
      log('warn', 'server', 'kv sweep failed', { error: error instanceof Error ? error.message : String(error) });
    }
    if (removed > 0) log('info', 'server', 'kv entries expired', { removed });
  };
  const timer = setInterval(() => {
    running ??= sweep().finally(() => (running = undefined));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
