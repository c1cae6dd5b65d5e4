// Test support: a Runtime behind the real HTTP front on 127.0.0.1, with its logs collected.

import type { AddressInfo } from 'node:net';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { Runtime, type LoadOptions } from '../../src/runtime/runtime.ts';
import { createHttpFront } from '../../src/http/front.ts';
import type { RuntimeOptions, WorkerDefinition, WorkerLogEntry } from '../../src/runtime/types.ts';

export interface Served {
  runtime: Runtime;
  /** Base URL of the front, e.g. http://127.0.0.1:40000 */
  url: string;
  logs: WorkerLogEntry[];
  /** GET (or any method) a path of a worker; workers are addressed by the first host label. */
  fetch(worker: string, path: string, init?: RequestInit): Promise<Response>;
  /** Resolves when a log entry matching `predicate` has arrived. */
  waitForLog(predicate: (entry: WorkerLogEntry) => boolean): Promise<WorkerLogEntry>;
  close(): Promise<void>;
}

/** A module worker from one source text. */
export function moduleWorker(source: string, extra: Partial<WorkerDefinition> = {}): WorkerDefinition {
  return { modules: [{ name: 'main.js', source }], ...extra };
}

export async function serve(
  workers: Record<string, WorkerDefinition>,
  options: RuntimeOptions = {},
  loadOptions: LoadOptions = {},
): Promise<Served> {
  const logs: WorkerLogEntry[] = [];
  const waiters: { predicate: (e: WorkerLogEntry) => boolean; resolve: (e: WorkerLogEntry) => void }[] = [];
  const runtime = new Runtime({
    ...options,
    log: (entry) => {
      logs.push(entry);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(entry)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(entry);
        }
      }
    },
  });
  for (const [name, definition] of Object.entries(workers)) await runtime.load(name, definition, loadOptions);
  const server = createHttpFront(runtime, {
    worker: (req) => (req.headers.host ?? '').split('.')[0],
    log: () => {},
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    runtime,
    url,
    logs,
    fetch(worker, path, init = {}) {
      return hostFetch(port, `${worker}.localhost:${port}`, path, init);
    },
    waitForLog(predicate) {
      const found = logs.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ predicate, resolve }));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close();
    },
  };
}

/**
 * fetch() with a chosen Host header (undici's fetch always derives Host from the URL), done
 * with node:http and returned as a web Response.
 */
export function hostFetch(port: number, host: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers: OutgoingHttpHeaders = { host };
  new Headers(init.headers).forEach((value, name) => (headers[name] = value));
  const body = init.body as string | Uint8Array | undefined;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 0;
        const nullBody = status === 204 || status === 304 || (init.method ?? 'GET') === 'HEAD';
        resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: responseHeaders }));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (init.signal) init.signal.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
    req.end(body);
  });
}
