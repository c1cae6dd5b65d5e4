// The sandbox's only way out of the isolate. The host fills `host` once, when it sets up a new
// context (the functions are isolated-vm Callbacks, which arrive here as plain functions of
// this isolate's realm). Modules import `host` and call through it; nothing puts it, or any
// of its functions, where tenant code could reach them.

export interface HostOps {
  /** Send one console line to the host's log for this worker. */
  log(level: string, message: string): void;
  /** Cryptographically strong random bytes from the host. */
  randomBytes(length: number): ArrayBuffer;
  /** WHATWG "domain to ASCII" (IDNA / UTS #46) for hosts that are not plain ASCII. */
  domainToASCII(domain: string): string;
  /** The reverse, for URL display. */
  domainToUnicode(domain: string): string;
  /** Ask for the next chunk of request `requestId`'s body; the host answers with `deliverBody`. */
  readBody(requestId: number): void;
  /** Start host timer `timerId` for request `requestId`; the host calls back `fireTimer`. */
  startTimer(requestId: number, timerId: number, delayMs: number): void;
  /** Cancel a timer started with startTimer. */
  clearTimer(timerId: number): void;
  /** An exception nothing caught (in a timer, a waitUntil promise, ...), with its stack. */
  uncaught(requestId: number, text: string): void;
  /** All of request `requestId`'s work (response and waitUntil) is over. */
  requestDone(requestId: number): void;
}

export const host: HostOps = {} as HostOps;

export function connectHost(ops: HostOps): void {
  Object.assign(host, ops);
}
