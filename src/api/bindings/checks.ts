// Checks of what bindings carry, where it arrives: a spec's shape (in a worker's definition, in a
// deploy body) and a platform binding's JSON arguments (on the host, from the isolate; in the
// control process, from a runtime process). On the host's built-ins, so never part of the sandbox.

import { BINDING_LIMITS, BINDING_TYPES, type BindingSpec } from '../../bridge/bindings.ts';

/**
 * What is wrong with `value` as JSON arguments (only null, booleans, finite numbers, strings,
 * arrays and plain objects, nested at most `depth` deep), or undefined when nothing is.
 */
export function jsonProblem(value: unknown, depth: number = BINDING_LIMITS.argsDepth): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return value === value && value !== Infinity && value !== -Infinity ? undefined : 'a number that JSON cannot hold';
  if (typeof value !== 'object') return `a ${typeof value}, which JSON cannot hold`;
  if (depth <= 0) return `objects or arrays nested more than ${BINDING_LIMITS.argsDepth} deep`;
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = jsonProblem(value[i], depth - 1);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (proto !== Object.prototype && proto !== null) return 'an object that is not a plain object';
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const problem = jsonProblem((value as Record<string, unknown>)[keys[i]!], depth - 1);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Each spec type's fields besides `type`, all text (BindingSpec, src/bridge/bindings.ts). */
const SPEC_FIELDS: Record<BindingSpec['type'], Record<string, 'required' | 'optional'>> = {
  kv: { namespaceId: 'required' },
  service: { service: 'required', entrypoint: 'optional' },
  assets: {},
  raw: {},
};

/** What is wrong with a spec's shape, or undefined (a worker's definition, and a deploy body: src/server/deployment.ts). */
export function specProblem(value: Record<string, unknown>): string | undefined {
  const type = value.type;
  if (!(BINDING_TYPES as readonly unknown[]).includes(type)) return `unknown binding type ${JSON.stringify(String(type).slice(0, 100))}: the types are ${BINDING_TYPES.join(', ')}`;
  const allowed = SPEC_FIELDS[type as BindingSpec['type']];
  for (const key of Object.keys(value)) {
    if (key === 'type') continue;
    if (!Object.hasOwn(allowed, key)) return `a ${type} binding has no field '${key.slice(0, 100)}'`;
    const field = value[key];
    if (typeof field !== 'string' || field.length === 0 || field.length > 256) return `'${key}' must be text of 1 to 256 characters`;
  }
  for (const [key, need] of Object.entries(allowed)) {
    if (need === 'required' && value[key] === undefined) return `a ${type} binding needs '${key}'`;
  }
  return undefined;
}
