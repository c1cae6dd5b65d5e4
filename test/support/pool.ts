// Test support: a ProcessPool of 2 default runtime processes whose supervisor lines and workers'
// log entries are kept, closed when the test file ends.

import { after } from 'node:test';
import { ProcessPool, type ProcessPoolOptions } from '../../src/supervisor/process-pool.ts';
import type { WorkerLogEntry } from '../../src/runtime/types.ts';

export interface PoolLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

const pools: ProcessPool[] = [];
after(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
});

export function testPool(options: Partial<ProcessPoolOptions> = {}): { pool: ProcessPool; lines: PoolLine[]; logs: WorkerLogEntry[] } {
  const lines: PoolLine[] = [];
  const logs: WorkerLogEntry[] = [];
  const made = new ProcessPool({
    processes: 2,
    // Tests are not about CPU limits (those that are ask for less); a loaded machine makes them slow.
    runtime: { limits: { cpuMs: 5000 } },
    workerLog: (entry) => logs.push(entry),
    log: (level, message, fields) => lines.push({ level, message, fields }),
    ...options,
  });
  pools.push(made);
  return { pool: made, lines, logs };
}
