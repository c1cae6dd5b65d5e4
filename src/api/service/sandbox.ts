// Service bindings as the snapshot knows them: the maker of a service binding's Fetcher, which
// loads the service sandbox module (./sandbox/module.ts) for the first worker of an isolate that
// has one, and the check RPC makes of what it sends both ways.

import { callBindingOperation, createModule } from '../../sandbox/host-calls.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import type { BindingMaker } from '../bindings/sandbox.ts';
import { DOMException } from '../events/sandbox.ts';
import { serviceFetch } from '../fetch/sandbox.ts';
import { Headers } from '../headers/sandbox.ts';
import { Request } from '../request/sandbox.ts';
import { Response } from '../response/sandbox.ts';
import type { ServiceDeps } from './sandbox/module.ts';
import { ObjectGetOwnPropertyDescriptor, ObjectGetPrototypeOf } from '../../sandbox/primordials.ts';

/** Loads the service module; its maker makes each service binding's Fetcher. */
export function serviceMaker(): BindingMaker<'service'> {
  return createModule<ServiceDeps, BindingMaker<'service'>>('service', {
    fetch: serviceFetch,
    call: (binding, method, args) => callBindingOperation('service.call', [binding, method], [args]),
    requireRequestContext,
    platformObjectName,
    DOMException: DOMException as unknown as ServiceDeps['DOMException'],
  });
}

/** Made with the snapshot: their prototypes are the platform's whatever a tenant does to the globals. */
const SNAPSHOT_CLASSES: [string, object][] = [['Request', Request.prototype], ['Response', Response.prototype], ['Headers', Headers.prototype]];
/** Made by sandbox modules on first use: found through their globals once made. */
const MODULE_CLASSES = ['ReadableStream', 'WritableStream', 'Blob', 'FormData'];

/**
 * The name of a platform object RPC cannot copy (a structured clone would make it an empty
 * object, or fail), when `value` is one.
 */
export function platformObjectName(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  for (let i = 0; i < SNAPSHOT_CLASSES.length; i++) {
    if (inherits(value, SNAPSHOT_CLASSES[i]![1])) return SNAPSHOT_CLASSES[i]![0];
  }
  for (let i = 0; i < MODULE_CLASSES.length; i++) {
    const name = MODULE_CLASSES[i]!;
    // Only a global already made (a value of a class not made yet cannot exist): reading an unmade one would load its module.
    const C = ObjectGetOwnPropertyDescriptor(globalThis, name)?.value as object | undefined;
    const proto = typeof C === 'function' ? ObjectGetOwnPropertyDescriptor(C, 'prototype')?.value as object | undefined : undefined;
    if (proto !== undefined && inherits(value, proto)) return name;
  }
  return undefined;
}

function inherits(value: object, proto: object): boolean {
  for (let at = ObjectGetPrototypeOf(value); at !== null; at = ObjectGetPrototypeOf(at)) if (at === proto) return true;
  return false;
}
