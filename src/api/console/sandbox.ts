// The console global, made on first access: the object and its formatting are a sandbox module
// (./sandbox/module.ts), so a worker that never logs does not carry them.

import { hostCalls, createModule } from '../../sandbox/host-calls.ts';
import type { ConsoleDeps } from './sandbox/module.ts';

export function consoleGlobal(): Record<string, (name: string) => unknown> {
  return {
    console: () => createModule<ConsoleDeps, Record<string, unknown>>('console', {
      log: (level, line) => hostCalls.log(level, line),
    }),
  };
}
