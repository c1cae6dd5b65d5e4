// Test support: a ProcessPool of 2 default runtime processes whose supervisor lines and workers'
// log entries are kept, closed when the test file ends; and a GET to one of its workers.

import { after } from 'node:test';
import { ProcessPool, type ProcessPoolOptions } from '../../src/supervisor/process-pool.ts';
import type { RuntimeRequest, WorkerLogEntry } from '../../src/runtime/types.ts';
import { bodyText } from './fetch-text.ts';

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

export function get(path = '/'): RuntimeRequest {
  return { method: 'GET', url: `https://example.com${path}`, headers: [] };
}

/** The pool's answer for a worker, its body read as text. */
export async function answer(p: ProcessPool, name: string, request = get()): Promise<{ status: number; text: string }> {
  const response = await p.fetch(name, request);
  return { status: response.status, text: await bodyText(response) };
}

/** Waits until the worker has logged 'holding' `times` times (the test workers log it when they hold a request). */
export async function holding(logs: WorkerLogEntry[], name: string, times = 1): Promise<void> {
  while (logs.filter((entry) => entry.worker === name && entry.type === 'console' && entry.message === 'holding').length < times) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
