// Spectre defence, as in the Workers security model: tenant code cannot time anything by
// itself. `Date.now()`, `new Date()` and `performance.now()` read a clock that stands still
// while JavaScript runs and moves only when the host hands in the time at an I/O event
// (a request arriving, a timer firing, a body chunk arriving).

import {
  ObjectDefineProperties, ObjectDefineProperty, ReflectConstruct, SymbolToStringTag,
} from '../../sandbox/primordials.ts';
import { hostTime } from '../../sandbox/request-context.ts';

// The time stands still between the host's entries (src/sandbox/request-context.ts sets it).
export function currentTime(): number {
  return hostTime;
}

const RealDate = Date;

// A Date that behaves exactly like the builtin except that "now" is the frozen clock.
// It shares Date.prototype, so `instanceof Date` and every method keep working.
function makeFrozenDate(): DateConstructor {
  const FrozenDate = function Date(this: unknown, ...args: unknown[]) {
    if (new.target === undefined) return new RealDate(hostTime).toString();
    const value = args.length === 0 ? new RealDate(hostTime) : ReflectConstruct(RealDate, args, new.target);
    return value;
  } as unknown as DateConstructor;
  ObjectDefineProperties(FrozenDate, {
    prototype: { value: RealDate.prototype, writable: false, enumerable: false, configurable: false },
    now: { value: function now() { return hostTime; }, writable: true, enumerable: false, configurable: true },
    parse: { value: RealDate.parse, writable: true, enumerable: false, configurable: true },
    UTC: { value: RealDate.UTC, writable: true, enumerable: false, configurable: true },
    length: { value: 7, configurable: true },
  });
  ObjectDefineProperty(RealDate.prototype, 'constructor', {
    value: FrozenDate, writable: true, enumerable: false, configurable: true,
  });
  return FrozenDate;
}

// workerd's Performance: timeOrigin is 0 and now() is the same frozen wall clock as Date.now().
class Performance {
  get timeOrigin(): number {
    return 0;
  }
  now(): number {
    return hostTime;
  }
  toJSON(): object {
    return { timeOrigin: 0 };
  }
  get [SymbolToStringTag]() {
    return 'Performance';
  }
}

export function clockGlobals(): Record<string, unknown> {
  return { Date: makeFrozenDate(), performance: new Performance(), Performance };
}
