// URLPattern (WHATWG URL Pattern Standard): urlpattern-polyfill, the polyfill written alongside
// the spec and tested against its web-platform-tests. A sandbox module (it is ~18 KB minified,
// heap in every isolate that would carry it): loaded the first time a worker reads URLPattern.
// It parses and canonicalises components with the platform's URL class, and runs on the
// captured built-ins (./intrinsics.ts).

import { URLPattern } from 'urlpattern-polyfill/urlpattern';
import { setURL } from './intrinsics.ts';

export interface URLPatternDeps {
  URL: Parameters<typeof setURL>[0];
}

export function create(deps: URLPatternDeps): typeof URLPattern {
  setURL(deps.URL);
  return URLPattern;
}
