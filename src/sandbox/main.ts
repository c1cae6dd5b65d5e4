// The sandbox runtime's entry: bundled into one script that every isolate starts from (a V8
// snapshot of it). It installs the Web platform globals, locks down code generation, and
// leaves exactly one global (ENTRIES_GLOBAL) holding the entry points the host needs
// (src/bridge/protocol.ts SandboxEntries); the host takes references to them and deletes the
// global before any tenant code runs.
'use strict';

import { callSync, connectHost, hostCalls, settleCall, receiveModule } from './host-calls.ts';
import { takePayload } from './outgoing-payloads.ts';
import { enterFromHost } from './request-context.ts';
import { ENTRIES_GLOBAL, HOST_CALL_ORDER, type HostCalls, type SandboxEntries } from '../bridge/protocol.ts';
import { clockGlobals } from '../api/clock/sandbox.ts';
import { lockCodeGeneration, lockContextFeatures } from '../api/codegen/sandbox.ts';
import { consoleGlobal } from '../api/console/sandbox.ts';
import { lockContextMemory, lockMemoryFeatures } from '../api/memory/sandbox.ts';
import { cryptoGlobals } from '../api/crypto/sandbox.ts';
import { fireTimer, timerGlobals } from '../api/timers/sandbox.ts';
import { webPlatformGlobals, lazyWebPlatformGlobals } from './web-platform.ts';
import { addBindings } from '../api/bindings/sandbox.ts';
import type { EnvBinding } from '../bridge/bindings.ts';
import { globalScopeEventMethods } from '../api/events/sandbox.ts';
import {
  abortRequest,
  connectServiceWorkerScope,
  fetchEventClass,
  cancelResponse,
  handleRequest,
  handleScheduled,
  handleCall,
  endRequest,
  registerWorker,
  pullResponse,
  takeResponseChunk,
  reportUncaught,
  drained,
  useDrainHook,
} from './dispatch.ts';
import { cloudflareWorkersExports } from '../api/cloudflare-workers/sandbox.ts';
import {
  Error, Object, ObjectDefineProperty, ObjectEntries, ObjectFreeze, ObjectSetPrototypeOf, SymbolToStringTag, TypeError,
} from './primordials.ts';

const global = globalThis as unknown as Record<string, unknown>;

// Captured here, in the snapshot: `register` runs after a service-worker script's top-level code,
// which may have replaced them (to read the env values as they are bound, say).
const defineProperty = Object.defineProperty;
const objectKeys = Object.keys;

function define(name: string, value: unknown): void {
  // A null-prototype descriptor: no accessor a tenant put on Object.prototype joins it.
  defineProperty(global, name, { __proto__: null, value, writable: true, enumerable: false, configurable: true } as PropertyDescriptor);
}

for (const [name, value] of ObjectEntries({
  ...webPlatformGlobals,
  ...clockGlobals(),
  self: globalThis,
  // workerd's answers: libraries sniff userAgent to detect Workers.
  navigator: ObjectFreeze({ userAgent: 'Cloudflare-Workers', hardwareConcurrency: 1, language: 'en' }),
})) {
  define(name, value);
}

// The global object is a ServiceWorkerGlobalScope, as in workerd: its prototype chain is
// ServiceWorkerGlobalScope.prototype -> WorkerGlobalScope.prototype -> an EventTarget
// prototype -> Object.prototype (workerd's global is no instance of the global EventTarget
// either). The classes cannot be constructed. The globals themselves stay own properties of
// the global object.
{
  const illegal = (name: string): Function => {
    const C = function () { throw new TypeError('Illegal constructor'); };
    ObjectDefineProperty(C, 'name', { __proto__: null, value: name, configurable: true });
    ObjectDefineProperty(C, 'length', { __proto__: null, value: 0, configurable: true });
    return C;
  };
  const GlobalEventTarget = illegal('EventTarget');
  const WorkerGlobalScope = illegal('WorkerGlobalScope');
  const ServiceWorkerGlobalScope = illegal('ServiceWorkerGlobalScope');
  const chain: [Function, object, string][] = [
    [GlobalEventTarget, Object.prototype, 'EventTarget'],
    [WorkerGlobalScope, GlobalEventTarget.prototype, 'WorkerGlobalScope'],
    [ServiceWorkerGlobalScope, WorkerGlobalScope.prototype, 'ServiceWorkerGlobalScope'],
  ];
  for (const [C, parent, tag] of chain) {
    ObjectSetPrototypeOf(C.prototype, parent);
    ObjectDefineProperty(C.prototype, SymbolToStringTag, { __proto__: null, value: tag, configurable: true });
  }
  // The EventTarget methods live on its prototype, as in workerd (no own property of the
  // global object); requests of service-worker syntax are dispatched to its 'fetch' listeners.
  const methods = globalScopeEventMethods(globalThis, connectServiceWorkerScope);
  for (const name of ['addEventListener', 'removeEventListener', 'dispatchEvent'] as const) {
    ObjectDefineProperty(GlobalEventTarget.prototype, name, { __proto__: null, value: methods[name], writable: true, enumerable: true, configurable: true });
  }
  ObjectSetPrototypeOf(globalThis, ServiceWorkerGlobalScope.prototype);
  define('WorkerGlobalScope', WorkerGlobalScope);
  define('ServiceWorkerGlobalScope', ServiceWorkerGlobalScope);
}

// Globals whose implementation is loaded on first use: an accessor that, when read, loads it and
// replaces itself with a plain writable property holding the value (so later reads cost
// nothing, and tenants see an ordinary global); assigning to it just sets the property. A maker
// takes the global's name, so that one function serves all the globals of a module (the
// accessors of some 35 globals are in every idle isolate).
for (const [name, make] of Object.entries<(name: string) => unknown>({ ...lazyWebPlatformGlobals, ...cryptoGlobals(), ...consoleGlobal(), ...timerGlobals(), FetchEvent: fetchEventClass })) {
  ObjectDefineProperty(global, name, {
    get() {
      const value = make(name);
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

lockCodeGeneration(globalThis);
lockMemoryFeatures(globalThis);

/**
 * The env `cloudflare:workers` exports, built before the worker's modules run (so that top-level
 * code reads it) and then the one `register` gives the handlers.
 */
let builtEnv: object | undefined;

/** Adds the bindings to env; returns why one cannot be made, if one cannot. */
function buildEnv(env: object, bindings: Record<string, EnvBinding>): string | undefined {
  try {
    addBindings(env as Record<string, unknown>, bindings);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : 'A binding could not be made.';
  }
}

/** Where the source of a built-in module (src/runtime/worker-script.ts) takes its exports, once. */
const BUILTIN_EXPORTS_GLOBAL = '__isolet_builtin';

const entryPoints: SandboxEntries = {
  init(drainHook: boolean, ...calls: HostCalls[keyof HostCalls][]): void {
    useDrainHook(drainHook === true);
    const byName = {} as Record<string, unknown>;
    for (let i = 0; i < HOST_CALL_ORDER.length; i++) byName[HOST_CALL_ORDER[i]!] = calls[i];
    connectHost(byName as unknown as HostCalls);
    lockContextFeatures(globalThis);
    lockContextMemory(globalThis, callSync('memory.limitMb'));
  },
  register(namespace, env, bindings, bindGlobals, needsScheduled) {
    if (builtEnv !== undefined) env = builtEnv;
    else if (bindings !== null && env && typeof env === 'object') {
      const problem = buildEnv(env, bindings);
      if (problem !== undefined) return problem;
    }
    if (bindGlobals && env && typeof env === 'object') {
      // service-worker syntax sees its vars as globals, as in Workers.
      const values = env as Record<string, unknown>;
      const names = objectKeys(values);
      for (let i = 0; i < names.length; i++) define(names[i]!, values[names[i]!]);
    }
    return registerWorker(namespace, env, needsScheduled === true);
  },
  exposeBuiltinModule(name, env, bindings) {
    if (name !== 'cloudflare:workers' || !env || typeof env !== 'object') throw new TypeError(`No built-in module is named ${name}.`);
    if (bindings !== null) {
      const problem = buildEnv(env, bindings);
      if (problem !== undefined) return problem;
    }
    builtEnv = env;
    // Read and deleted by the module's own first line, before any tenant module is evaluated.
    defineProperty(global, BUILTIN_EXPORTS_GLOBAL, { __proto__: null, value: cloudflareWorkersExports(env), writable: true, enumerable: false, configurable: true } as PropertyDescriptor);
    return undefined;
  },
  // Head fields cross as primitives (HeaderLines): they skip isolated-vm's structured copy, a
  // third of a small request's crossing cost. The answer goes back through respondSimple or
  // respond (handleRequest never rejects); the entry itself returns nothing.
  dispatch(requestId, method, url, headers, hasBody, now, entrypoint, inline): void {
    void handleRequest(requestId, method, url, headers, hasBody, now, entrypoint, inline);
  },
  invoke(requestId, entrypoint, method, args, now): void {
    void handleCall(requestId, entrypoint, method, args, now);
  },
  scheduled(requestId, cron, scheduledTime, now): void {
    void handleScheduled(requestId, cron, scheduledTime, now);
  },
  pullResponse,
  takeResponseChunk,
  takePayload,
  cancelResponse,
  receiveModule,
  fireTimer(requestId, timerId, now): void {
    enterFromHost(requestId, now);
    try {
      fireTimer(timerId);
    } catch (error) {
      reportUncaught(requestId, error);
    }
  },
  drained,
  abort: abortRequest,
  settle: settleCall,
  end: endRequest,
};

define(ENTRIES_GLOBAL, entryPoints);
