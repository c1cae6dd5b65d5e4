// The check a platform binding's JSON arguments and answers pass where they arrive (the host, from
// the isolate; the control process, from a runtime process): on the host's built-ins, so it is
// never part of the sandbox.

import { BINDING_LIMITS } from '../../bridge/bindings.ts';

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
