// Test support: a request to a worker of a Runtime, in process, with its body read as text.

import type { Runtime } from '../../src/runtime/runtime.ts';
import type { RuntimeResponse } from '../../src/runtime/types.ts';

/** A RuntimeResponse's body as text, read to its end. */
export async function bodyText(response: RuntimeResponse): Promise<string> {
  if (response.body === null) return '';
  if (response.body instanceof Uint8Array) return Buffer.from(response.body).toString();
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

export async function fetchText(runtime: Runtime, worker: string, path: string): Promise<{ status: number; text: string }> {
  const response = await runtime.fetch(worker, { method: 'GET', url: `http://${worker}.test${path}`, headers: [] });
  let text = '';
  if (response.body instanceof Uint8Array) text = Buffer.from(response.body).toString();
  else if (response.body) for await (const chunk of response.body) text += Buffer.from(chunk).toString();
  return { status: response.status, text };
}
