// What the bundled urlpattern-polyfill runs on in place of the realm's globals. When the
// url-pattern module is bundled, every global the polyfill names (Object.assign, RegExp,
// TypeError, parseInt, URL, ...) is rewritten to a property of this module, and the prototype
// methods it calls on its own strings, arrays and regular expressions to the captured ones
// (src/runtime/bound-libraries.ts), so URLPattern behaves the same whatever tenant code has
// replaced.

import { StringPrototypeCharAt, StringPrototypeIndexOf } from '../../../sandbox/primordials.ts';
import type { SafeURL } from '../../url/sandbox.ts';

export * from '../../../sandbox/primordials.ts';

/**
 * The URL class the polyfill parses and canonicalises with: the platform's, with accessors
 * tenant code cannot replace (SafeURL). Set by create().
 */
export let URL: typeof SafeURL | undefined;

export function setURL(C: typeof SafeURL): void {
  URL = C;
}

/**
 * `s` with a backslash before each character that is in `special`: the polyfill's escaping of
 * pattern and regular expression text, which it does with String.prototype.replace and a global
 * RegExp (that would call the RegExp's replaceable `exec` and Symbol.replace).
 */
export function backslashEscape(s: string, special: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = StringPrototypeCharAt(s, i);
    out += StringPrototypeIndexOf(special, c) === -1 ? c : '\\' + c;
  }
  return out;
}
