// `cloudflare:workers` as the snapshot knows it: the module's classes are made on first use
// (./sandbox/module.ts), and what the platform asks of them (is this export a WorkerEntrypoint,
// a DurableObject?) is answered without loading them for workers that never imported it.

import { createModule } from '../../sandbox/host-calls.ts';
import type { CloudflareWorkersClasses } from './sandbox/module.ts';
import { ObjectCreate, ObjectGetPrototypeOf } from '../../sandbox/primordials.ts';

let classes: CloudflareWorkersClasses | undefined;

/** The classes, made in this isolate on first use. */
export function cloudflareWorkersClasses(): CloudflareWorkersClasses {
  return (classes ??= createModule<undefined, CloudflareWorkersClasses>('cloudflare-workers', undefined));
}

/**
 * The exports of `cloudflare:workers` for a worker whose env is `env`: a null-prototype object,
 * so that nothing a tenant put on Object.prototype joins what the module's source reads.
 */
export function cloudflareWorkersExports(env: object): Record<string, unknown> {
  const { WorkerEntrypoint, DurableObject, RpcTarget } = cloudflareWorkersClasses();
  const exports = ObjectCreate(null) as Record<string, unknown>;
  exports.WorkerEntrypoint = WorkerEntrypoint;
  exports.DurableObject = DurableObject;
  exports.RpcTarget = RpcTarget;
  exports.env = env;
  return exports;
}

/** Whether `value` is a class that extends DurableObject (false when no module imported it). */
export function isDurableObjectClass(value: unknown): boolean {
  if (classes === undefined || typeof value !== 'function') return false;
  // The class's own chain of constructors: `class A extends DurableObject` has it as [[Prototype]].
  for (let at: unknown = value; at !== null && at !== undefined; at = ObjectGetPrototypeOf(at)) {
    if (at === classes.DurableObject) return true;
  }
  return false;
}
