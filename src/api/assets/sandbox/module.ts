// env.ASSETS as the worker sees it: a Fetcher whose fetch(request) asks the platform's asset
// server (through the one binding operation) and answers a Response. A sandbox module (see
// src/runtime/sandbox-modules.ts), loaded by the first worker of an isolate with an assets
// binding. What crosses: the request's method, URL and headers (assets read no body); back, the
// status, the headers and the body's bytes.

import type { CallBinding } from '../../bindings/sandbox.ts';
import type { Request, RequestInit } from '../../request/sandbox.ts';
import type { Response } from '../../response/sandbox.ts';
import type { Headers } from '../../headers/sandbox.ts';
import { ArrayIsArray, ArrayPrototypeSlice, ObjectFreeze, String, TypeError } from '../../../sandbox/primordials.ts';

export interface AssetsDeps {
  Request: typeof Request;
  Response: typeof Response;
  requestForFetch(request: Request): { method: string; url: string; headers: Headers };
  headerList(headers: Headers): readonly string[];
}

/** The Fetcher for env[name]. */
export type AssetsMaker = (name: string, spec: { type: 'assets' }, call: CallBinding) => object;

export function create(deps: AssetsDeps): AssetsMaker {
  return (name, _spec, call) => {
    // An async function: a Request that cannot be made rejects, as fetch() does.
    async function fetch(input: ConstructorParameters<typeof Request>[0], init?: RequestInit): Promise<Response> {
      const parts = deps.requestForFetch(new deps.Request(input, init));
      const answer = await call('fetch', [parts.method, parts.url, ArrayPrototypeSlice(deps.headerList(parts.headers))]);
      const value = answer.value as { status?: unknown; headers?: unknown } | null;
      const lines = value?.headers;
      if (value === null || typeof value.status !== 'number' || !ArrayIsArray(lines)) throw new TypeError(`env.${name}.fetch(): the asset server gave no answer.`);
      const headers = { __proto__: null } as unknown as Record<string, string>;
      for (let i = 0; i + 1 < lines.length; i += 2) headers[String(lines[i])] = String(lines[i + 1]);
      return new deps.Response(answer.bytes, { status: value.status, headers });
    }
    return ObjectFreeze({ fetch });
  };
}
