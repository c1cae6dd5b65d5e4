// structuredClone() for the sandbox (HTML §2.7 "safe passing of structured data"): the
// registry of platform objects' serializations is here, in the snapshot, since every API marks
// its classes at load; the algorithm (./sandbox/module.ts) is a sandbox module, loaded by the
// first call.

import { createModule } from '../../sandbox/host-calls.ts';
import { DOMException } from '../events/sandbox.ts';
import type { StructuredCloneDeps } from './sandbox/module.ts';
import {
  ObjectGetPrototypeOf, SafeWeakMap, TypeError,
} from '../../sandbox/primordials.ts';

// Prototypes of platform objects (Headers, Request, ...): each with its serialization (a
// function making the copy, which throws what cannot be cloned), or null when it has none (a
// DataCloneError). Set by the index once, so this file depends on none of them.
const platformPrototypes = new SafeWeakMap<object, ((value: object) => object) | null>();
export function markNotSerializable(...classes: { prototype: object }[]): void {
  for (let i = 0; i < classes.length; i++) platformPrototypes.set(classes[i]!.prototype, null);
}
export function markSerializable(C: { prototype: object }, clone: (value: object) => object): void {
  platformPrototypes.set(C.prototype, clone);
}

/** The platform object's serialization: undefined for no platform object, null for none. */
function platformSerialization(value: object): ((value: object) => object) | null | undefined {
  for (let p = ObjectGetPrototypeOf(value); p !== null; p = ObjectGetPrototypeOf(p)) {
    const entry = platformPrototypes.get(p);
    if (entry !== undefined) return entry;
  }
  return undefined;
}

let clone: (<T>(value: T, options?: { transfer?: readonly unknown[] }) => T) | undefined;

export function structuredClone<T>(value: T, options?: { transfer?: readonly unknown[] }): T {
  if (arguments.length === 0) throw new TypeError("Failed to execute 'structuredClone': 1 argument required, but only 0 present.");
  clone ??= createModule<StructuredCloneDeps, typeof clone>('structured-clone', {
    DOMException: DOMException as unknown as StructuredCloneDeps['DOMException'],
    platformSerialization,
  });
  return clone!(value, options);
}
