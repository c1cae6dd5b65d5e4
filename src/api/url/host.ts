// Host side of URL: IDNA (UTS #46) for hosts the sandbox cannot map with its ASCII fast path.
// Node's url.domainToASCII is ada, the URL engine workerd uses, so isolet's hosts match workerd's
// byte for byte without shipping Unicode tables into every isolate. Node returns '' on failure;
// the sandbox maps '' to the URL parser's host failure (src/api/url/sandbox.ts).

import { domainToASCII, domainToUnicode } from 'node:url';

export const urlHostOps = {
  domainToASCII(domain: string): string {
    return domainToASCII(String(domain));
  },
  domainToUnicode(domain: string): string {
    return domainToUnicode(String(domain));
  },
};
