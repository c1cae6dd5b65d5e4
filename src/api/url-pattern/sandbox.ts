// URLPattern: the part in every isolate's snapshot (a name). The implementation is the
// url-pattern sandbox module (./sandbox/module.ts), evaluated on first access to the global.

import { createModule } from '../../sandbox/host-calls.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import { SafeURL } from '../url/sandbox.ts';
import type { URLPatternDeps } from './sandbox/module.ts';
import {
  ObjectDefineProperty, SymbolToStringTag,
} from '../../sandbox/primordials.ts';

let URLPatternClass: Function | undefined;

export function urlPatternGlobals(): Record<string, () => unknown> {
  return {
    URLPattern: () => {
      if (URLPatternClass === undefined) {
        URLPatternClass = createModule<URLPatternDeps, Function>('url-pattern', { URL: SafeURL });
        ObjectDefineProperty(URLPatternClass, 'name', { __proto__: null, value: 'URLPattern', configurable: true });
        ObjectDefineProperty(URLPatternClass.prototype, SymbolToStringTag, { __proto__: null, value: 'URLPattern', configurable: true });
        markNotSerializable(URLPatternClass);
      }
      return URLPatternClass;
    },
  };
}
