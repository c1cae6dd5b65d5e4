// The admin API as the dashboard calls it: the same endpoints and bearer token as the CLI
// (docs/ADMIN_API.md), from the same origin. The token travels only in the Authorization
// header, which a browser never adds by itself, so no other page can make the dashboard's
// requests for it (no cross-site request forgery to defend against).

import type { WorkerSummary } from '../../server/admin-shapes.ts';

export class ApiFailure extends Error {
  override name = 'ApiFailure';
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  readonly #token: string;
  readonly #onUnauthorized: () => void;

  constructor(token: string, onUnauthorized: () => void) {
    this.#token = token;
    this.#onUnauthorized = onUnauthorized;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    if (response.ok) return (response.status === 204 ? undefined : await response.json()) as T;
    throw await this.#failure(response);
  }

  /**
   * Reads an NDJSON stream (the tail) line by line until it ends or `signal` aborts; resolves
   * when it has ended.
   */
  async stream(path: string, signal: AbortSignal, onLine: (value: unknown) => void): Promise<void> {
    const response = await fetch(path, { headers: { authorization: `Bearer ${this.#token}` }, signal, cache: 'no-store' });
    if (!response.ok || response.body === null) throw await this.#failure(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      pending += value;
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() === '') continue;
        try {
          onLine(JSON.parse(line));
        } catch {
          onLine({ level: 'warn', type: 'tail', message: line });
        }
      }
    }
  }

  async #failure(response: Response): Promise<ApiFailure> {
    if (response.status === 401) this.#onUnauthorized();
    let code = 'http';
    let message = `The server answered ${response.status} ${response.statusText}.`;
    try {
      const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
      if (typeof body.error?.code === 'string') code = body.error.code;
      if (typeof body.error?.message === 'string') message = body.error.message;
    } catch {
      // Not the API's JSON error (a proxy's page, say): the status says enough.
    }
    return new ApiFailure(response.status, code, message);
  }
}

/** The admin API's shapes the dashboard reads (declared once, for the server and the CLI too). */
export type { AccountSummary, SecretSummary, TokenSummary, Version, WorkerDetails, WorkerSummary } from '../../server/admin-shapes.ts';

/** One of the worker's log entries, as the tail streams them. */
export interface LogEntry {
  time?: string;
  level?: string;
  type?: string;
  message?: string;
  status?: number;
  cpuMs?: number;
  wallMs?: number;
  [field: string]: unknown;
}

/** Path segments are the caller's strings: always encoded. */
export function path(strings: TemplateStringsArray, ...values: string[]): string {
  return strings.reduce((out, text, i) => out + text + (i < values.length ? encodeURIComponent(values[i]!) : ''), '');
}
