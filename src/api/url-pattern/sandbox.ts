// URLPattern: the part in every isolate's snapshot (a name). The implementation is the
// url-pattern sandbox module (./sandbox/module.ts), evaluated on first access to the global.

import { loadModule } from '../../sandbox/host.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';

let URLPatternClass: Function | undefined;

export function urlPatternGlobals(): Record<string, () => unknown> {
  return {
    URLPattern: () => {
      if (URLPatternClass === undefined) {
        URLPatternClass = loadModule<{ URLPattern: Function }>('url-pattern').URLPattern;
        Object.defineProperty(URLPatternClass, 'name', { value: 'URLPattern', configurable: true });
        Object.defineProperty(URLPatternClass.prototype, Symbol.toStringTag, { value: 'URLPattern', configurable: true });
        markNotSerializable(URLPatternClass);
      }
      return URLPatternClass;
    },
  };
}
