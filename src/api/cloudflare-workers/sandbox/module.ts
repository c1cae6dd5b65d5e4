// The classes of `cloudflare:workers`, the module Workers code imports its entrypoint base
// classes from. A sandbox module: evaluated only in isolates whose worker imports it
// (src/runtime/worker-script.ts links it), so the snapshot every isolate starts from does not
// grow.
//
// WorkerEntrypoint is what workerd's is: a base class whose constructor keeps `ctx` and `env`,
// for the platform to construct once per request or RPC call (src/sandbox/dispatch.ts).
// DurableObject exists so that a module declaring one evaluates; the worker's registration then
// refuses it by name ("not supported yet"), at deploy. RpcTarget (objects passed by reference
// over RPC) is not supported: constructing one says so.

import { ObjectDefineProperty, TypeError } from '../../../sandbox/primordials.ts';

export interface CloudflareWorkersClasses {
  WorkerEntrypoint: new (ctx: unknown, env: unknown) => object;
  DurableObject: new (ctx: unknown, env: unknown) => object;
  RpcTarget: new () => object;
}

/** A base class whose constructor keeps `ctx` and `env`, as workerd's entrypoint classes do; each call makes another. */
function entrypointBase(): new (ctx: unknown, env: unknown) => object {
  return class {
    ctx: unknown;
    env: unknown;
    constructor(ctx: unknown, env: unknown) {
      this.ctx = ctx;
      this.env = env;
    }
  };
}

export function create(): CloudflareWorkersClasses {
  const WorkerEntrypoint = entrypointBase();
  const DurableObject = entrypointBase();
  class RpcTarget {
    constructor() {
      throw new TypeError('RpcTarget is not supported by isolet yet: RPC passes structured-cloneable values (objects, arrays, Maps, Dates, bytes, ...) by copy. Return or pass plain data instead.');
    }
  }
  // The bundle is minified: the names tenants see are pinned.
  for (const [value, name] of [[WorkerEntrypoint, 'WorkerEntrypoint'], [DurableObject, 'DurableObject'], [RpcTarget, 'RpcTarget']] as const) {
    ObjectDefineProperty(value, 'name', { __proto__: null, value: name, configurable: true } as PropertyDescriptor);
  }
  return { WorkerEntrypoint, DurableObject, RpcTarget };
}
