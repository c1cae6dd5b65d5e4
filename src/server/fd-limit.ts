// The process's open-file limit (`ulimit -n`), which the listeners' connection caps must fit
// in: a cap the kernel would refuse first is no cap, and a process out of file descriptors
// stops accepting on every listener, the admin API's included.

import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** The soft limit on open files, Infinity when unlimited, undefined when it cannot be known. */
export function openFileLimit(): number | undefined {
  try {
    // Linux: "Max open files  <soft>  <hard>  files".
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft !== undefined) return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    // Not Linux: ask a shell, which has the same limit as its parent.
  }
  try {
    const out = spawnSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8', timeout: 5000 }).stdout?.trim();
    if (out === 'unlimited') return Infinity;
    const n = Number(out);
    return out !== '' && Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export interface FittedCaps {
  data: number;
  admin: number;
  /** File descriptors kept for everything else: the store, logs, workers' outbound connections. */
  reserve: number;
}

/**
 * The two listeners' total caps lowered, if need be, so that they and a reserve for the rest
 * fit in `limit` open files; the admin API keeps its share (an eighth of what is left, at least
 * 16), so it stays reachable when the data plane is full.
 */
export function fitConnectionCaps(data: number, admin: number, limit: number): FittedCaps {
  const reserve = Math.min(1024, Math.floor(limit / 4));
  if (data + admin + reserve <= limit) return { data, admin, reserve };
  const available = Math.max(2, limit - reserve);
  const fittedAdmin = Math.max(1, Math.min(admin, Math.max(16, Math.floor(available / 8)), available - 1));
  return { data: Math.max(1, Math.min(data, available - fittedAdmin)), admin: fittedAdmin, reserve };
}
