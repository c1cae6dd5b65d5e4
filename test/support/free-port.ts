// A TCP port on 127.0.0.1 that was free a moment ago, for a server that must be told its port
// (workerd, PostgreSQL, HAProxy) rather than pick one itself.
//
// Picked below the kernel's ephemeral range: a port from there (what listen(0) gives) is also
// what the kernel hands every outgoing connection as its local port, so in the moment between
// this check and the server binding it, any test's client could take it (workerd then exited
// with "Address already in use" while another test file ran beside it). Ports below the range
// are only ever taken by a bind that asks for them.
//
// Test files run in processes of their own, side by side, and each picks ports for its servers:
// two picking the same one between the check and the bind made one server fail (workerd could
// not bind, and its port answered for another test's server). So a port handed out is also
// reserved, machine-wide, for as long as the process that took it lives: a directory named
// after it, made exclusively, holding the taker's pid.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RESERVED = join(tmpdir(), 'isolet-test-ports');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reserves `port` for this process; false when a live process holds it. */
function reserve(port: number): boolean {
  const dir = join(RESERVED, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        // Made a moment ago, its pid not written yet: held.
        return false;
      }
      if (holder === process.pid || (Number.isInteger(holder) && holder > 0 && alive(holder))) return false;
      // Left by a process that has ended: taken over (mkdir decides between two that try at once).
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return false;
}

const LOWEST = 10_000;

/** The first port of the kernel's ephemeral range (Linux), or undefined where it cannot be read. */
function ephemeralStart(): number | undefined {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}

export async function freePort(): Promise<number> {
  mkdirSync(RESERVED, { recursive: true });
  const start = ephemeralStart();
  if (start !== undefined && start > LOWEST + 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = LOWEST + Math.floor(Math.random() * (start - LOWEST));
      if (!reserve(candidate)) continue;
      const port = await tryListen(candidate);
      if (port !== undefined) return port;
    }
  }
  const port = await tryListen(0);
  if (port === undefined) throw new Error('no free TCP port on 127.0.0.1');
  return port;
}
