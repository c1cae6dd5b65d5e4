// The reason phrase sent for a worker's Response made without a statusText: workerd's table, so
// that the status line reads the same in both (probed from workerd for every status 200-599:
// RFC 9110 §15's phrases, "I'm a teapot" for 418, and for a status it does not name, the name
// of its class). A statusText given as '' stays empty on the wire, as in workerd. Used inside
// the sandbox (response/sandbox.ts), so it is plain data, no Node.

import { MathFloor } from '../../sandbox/primordials.ts';

// Made by the first status other than 200 (which most responses have): at load it was heap in
// every idle isolate.
let phrases: Record<number, string> | undefined;
const table = (): Record<number, string> => ({
  // No prototype: a status missing here must not find a phrase on Object.prototype.
  __proto__: null,
  200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'Non-Authoritative Information', 204: 'No Content',
  205: 'Reset Content', 206: 'Partial Content', 207: 'Multi-Status', 208: 'Already Reported', 226: 'IM Used',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified',
  305: 'Use Proxy', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 407: 'Proxy Authentication Required', 408: 'Request Timeout',
  409: 'Conflict', 410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Payload Too Large',
  414: 'URI Too Long', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 417: 'Expectation Failed',
  418: "I'm a teapot", 421: 'Misdirected Request', 422: 'Unprocessable Entity', 423: 'Locked',
  424: 'Failed Dependency', 426: 'Upgrade Required', 428: 'Precondition Required', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported', 506: 'Variant Also Negotiates',
  507: 'Insufficient Storage', 508: 'Loop Detected', 510: 'Not Extended', 511: 'Network Authentication Required',
}) as never;

/** workerd's reason phrase for a status 200-599 ('' outside that range). */
export function reasonPhrase(status: number): string {
  if (status === 200) return 'OK';
  return (phrases ??= table())[status] ?? ['', '', 'Successful', 'Redirection', 'Client Error', 'Server Error'][MathFloor(status / 100)] ?? '';
}
