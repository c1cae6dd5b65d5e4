// The floor's tenants: a bare isolated-vm isolate each (the build isolet runs on, under isolet's
// engine flags) holding one function that returns the hello-world body. For
// bench/support/floor-server.ts and bench/support/touched.ts.

import ivm from 'isolated-vm';
import { applyEngineFlags } from '../../src/runtime/engine-flags.ts';
import { HELLO_BODY } from './hello.ts';

export async function bareTenants(count: number): Promise<ivm.Reference<(url: string) => string>[]> {
  applyEngineFlags();
  const handlers: ivm.Reference<(url: string) => string>[] = [];
  for (let i = 0; i < count; i++) {
    const isolate = new ivm.Isolate({ memoryLimit: 128 });
    const context = await isolate.createContext();
    handlers.push(await context.eval(`(url) => ${JSON.stringify(HELLO_BODY)}`, { reference: true }));
  }
  return handlers;
}
