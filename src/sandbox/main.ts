// The sandbox runtime's entry: bundled into one script that every isolate starts from (a V8
// snapshot of it). It installs the Web platform globals, locks down code generation, and
// leaves exactly one global, `__isolet`, holding the entry points the host needs; the host
// takes references to them and deletes the global before any tenant code runs.
'use strict';

import { connectHost, settleCall, receiveModule, type HostOps } from './host.ts';
import { clockGlobals } from '../api/clock/sandbox.ts';
import { lockCodeGeneration, lockContextFeatures } from '../api/codegen/sandbox.ts';
import { createConsole } from '../api/console/sandbox.ts';
import { cryptoGlobals } from '../api/crypto/sandbox.ts';
import { fireTimer, timerGlobals } from '../api/timers/sandbox.ts';
import { webPlatformGlobals, lazyWebPlatformGlobals } from './web-platform.ts';
import {
  abortRequest,
  addServiceWorkerListener,
  cancelResponse,
  dispatch,
  endRequest,
  enterFromHost,
  registerWorker,
  pullResponse,
  reportUncaught,
} from './dispatch.ts';

const global = globalThis as unknown as Record<string, unknown>;

function define(name: string, value: unknown): void {
  Object.defineProperty(global, name, { value, writable: true, enumerable: false, configurable: true });
}

for (const [name, value] of Object.entries({
  ...webPlatformGlobals,
  ...clockGlobals(),
  ...timerGlobals(),
  ...cryptoGlobals(),
  console: createConsole(),
  self: globalThis,
  navigator: Object.freeze({ userAgent: 'isolet', hardwareConcurrency: 1 }),
})) {
  define(name, value);
}

// Globals whose implementation is loaded on first use: an accessor that, when read, loads it and
// replaces itself with a plain writable property holding the value (so later reads cost
// nothing, and tenants see an ordinary global); assigning to it just sets the property.
for (const [name, make] of Object.entries(lazyWebPlatformGlobals)) {
  Object.defineProperty(global, name, {
    get() {
      const value = make();
      define(name, value);
      return value;
    },
    set(value: unknown) {
      define(name, value);
    },
    enumerable: false,
    configurable: true,
  });
}

// service-worker syntax: the global scope is an EventTarget that collects 'fetch' listeners.
define('addEventListener', function addEventListener(type: string, listener: unknown) {
  addServiceWorkerListener(String(type), listener);
});
define('removeEventListener', function removeEventListener() {});

lockCodeGeneration(globalThis);

const entryPoints = {
  // Positional, in the order of HOST_OPS in src/runtime/worker-isolate.ts.
  init(...fns: HostOps[keyof HostOps][]): void {
    const names = ['log', 'uncaught', 'startTimer', 'clearTimer', 'requestDone', 'sync', 'async', 'loadModule'] as const;
    const ops = {} as Record<string, unknown>;
    names.forEach((name, i) => (ops[name] = fns[i]));
    connectHost(ops as unknown as HostOps);
    lockContextFeatures(globalThis);
  },
  register(namespace: Record<string, unknown> | null, env: unknown, bindGlobals: boolean): string | undefined {
    if (bindGlobals && env && typeof env === 'object') {
      // service-worker syntax sees its vars as globals, as in Workers.
      for (const [name, value] of Object.entries(env)) define(name, value);
    }
    return registerWorker(namespace, env);
  },
  dispatch,
  pullResponse,
  cancelResponse,
  receiveModule,
  fireTimer(requestId: number, timerId: number, now: number): void {
    enterFromHost(requestId, now);
    try {
      fireTimer(timerId);
    } catch (error) {
      reportUncaught(requestId, error);
    }
  },
  abort: abortRequest,
  settle: settleCall,
  end: endRequest,
};

define('__isolet', entryPoints);
