// A TCP port on 127.0.0.1 that was free a moment ago, for a server that must be told its port
// (workerd, PostgreSQL, HAProxy) rather than pick one itself.
//
// Picked below the kernel's ephemeral range: a port from there (what listen(0) gives) is also
// what the kernel hands every outgoing connection as its local port, so in the moment between
// this check and the server binding it, any test's client could take it (workerd then exited
// with "Address already in use" while another test file ran beside it). Ports below the range
// are only ever taken by a bind that asks for them.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

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
  const start = ephemeralStart();
  if (start !== undefined && start > LOWEST + 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = await tryListen(LOWEST + Math.floor(Math.random() * (start - LOWEST)));
      if (port !== undefined) return port;
    }
  }
  const port = await tryListen(0);
  if (port === undefined) throw new Error('no free TCP port on 127.0.0.1');
  return port;
}
