// Test support: a request to a worker of a Runtime, in process, with its body read as text.

import type { Runtime } from '../../src/runtime/runtime.ts';

export async function fetchText(runtime: Runtime, worker: string, path: string): Promise<{ status: number; text: string }> {
  const response = await runtime.fetch(worker, { method: 'GET', url: `http://${worker}.test${path}`, headers: [] });
  let text = '';
  if (response.body instanceof Uint8Array) text = Buffer.from(response.body).toString();
  else if (response.body) for await (const chunk of response.body) text += Buffer.from(chunk).toString();
  return { status: response.status, text };
}
