// env.ASSETS.fetch() as it crosses to whoever serves the assets (the control process of
// `isolet serve`, or `isolet dev`): the call's arguments, checked as hostile, become the request
// the asset rules answer, and the answer goes back as JSON (status and headers) plus the body's
// bytes. The worker side is src/api/assets/sandbox/module.ts.

import { BindingError, type BindingAnswer, type BindingCall, type RuntimeResponse } from '../runtime/types.ts';
import type { AssetRequest } from './respond.ts';

const MAX_URL = 16 * 1024;
const MAX_HEADER_LINES = 2 * 256;
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$/;

/** The request of `env.NAME.fetch()`: [method, url, [name, value, ...]]; anything else is a TypeError. */
export function assetRequestOf(call: BindingCall): AssetRequest {
  const [method, url, lines] = call.args;
  if (call.method !== 'fetch' || typeof method !== 'string' || !METHOD.test(method) || typeof url !== 'string' || url.length > MAX_URL ||
    !Array.isArray(lines) || lines.length % 2 !== 0 || lines.length > MAX_HEADER_LINES || !lines.every((item) => typeof item === 'string')) {
    throw new BindingError('TypeError', `env.${call.name}: an assets binding takes fetch(request) only.`);
  }
  if (!URL.canParse(url)) throw new BindingError('TypeError', `env.${call.name}.fetch(): '${url.slice(0, 200)}' is not an absolute URL.`);
  const headers: [string, string][] = [];
  for (let i = 0; i < lines.length; i += 2) headers.push([lines[i] as string, lines[i + 1] as string]);
  return { method, url, headers };
}

/** The answer as it crosses back: status and header lines as JSON, the body as bytes. */
export function assetAnswer(response: RuntimeResponse): BindingAnswer {
  const headers = response.headers.flat();
  const body = response.body;
  return { value: { status: response.status, headers }, ...(body instanceof Uint8Array ? { bytes: body } : {}) };
}
