// URLPattern (WHATWG URL Pattern Standard): urlpattern-polyfill, the polyfill written alongside
// the spec and tested against its web-platform-tests. A sandbox module (it is ~18 KB minified,
// heap in every isolate that would carry it): loaded the first time a worker reads URLPattern.
// It parses and canonicalises components with the sandbox's own URL class (the global URL).

export { URLPattern } from 'urlpattern-polyfill/urlpattern';
