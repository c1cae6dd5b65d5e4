// Test support: an open tail (GET /v1/workers/:name/tail), its NDJSON entries as they arrive.

import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import type { WorkerLogEntry } from '../../src/runtime/types.ts';

/** An open tail: its entries as they arrive, and waits on them. */
export class Tail {
  readonly entries: WorkerLogEntry[] = [];
  readonly req: ClientRequest;
  res!: IncomingMessage;
  ended = false;
  readonly #waiters = new Set<() => void>();
  #buffer = '';

  private constructor(req: ClientRequest) {
    this.req = req;
  }

  static open(adminUrl: string, worker: string, token: string, { read = true } = {}): Promise<Tail> {
    const url = new URL(adminUrl);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: `/v1/workers/${worker}/tail`, headers: { authorization: `Bearer ${token}` }, agent: false });
      const tail = new Tail(req);
      req.on('error', (error) => (tail.res ? tail.#end() : reject(error)));
      req.on('response', (res) => {
        tail.res = res;
        res.setEncoding('utf8');
        if (read) res.on('data', (chunk: string) => tail.#data(chunk));
        else res.pause();
        res.on('end', () => tail.#end());
        res.on('close', () => tail.#end());
        res.on('error', () => tail.#end());
        resolve(tail);
      });
      req.end();
    });
  }

  #data(chunk: string): void {
    this.#buffer += chunk;
    let newline: number;
    while ((newline = this.#buffer.indexOf('\n')) !== -1) {
      this.entries.push(JSON.parse(this.#buffer.slice(0, newline)) as WorkerLogEntry);
      this.#buffer = this.#buffer.slice(newline + 1);
    }
    for (const waiter of [...this.#waiters]) waiter();
  }

  #end(): void {
    this.ended = true;
    for (const waiter of [...this.#waiters]) waiter();
  }

  waitFor(predicate: (entry: WorkerLogEntry) => boolean): Promise<WorkerLogEntry> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.entries.find(predicate);
        if (found) {
          this.#waiters.delete(check);
          resolve(found);
        } else if (this.ended) {
          this.#waiters.delete(check);
          reject(new Error(`tail ended first; got ${JSON.stringify(this.entries)}`));
        }
      };
      this.#waiters.add(check);
      check();
    });
  }

  close(): void {
    this.req.destroy();
  }
}
