// Waiting for an isolate's queued runs to end before it is disposed: disposed while a run is
// under way, V8 tears the isolate down on the thread of isolated-vm that ran it, and a process
// that exits meanwhile crashes (SIGSEGV). Disposed when idle, it is torn down on the caller's
// thread, at once.

import type ivm from 'isolated-vm';

/** Resolves once the runs queued for the isolate so far are over (or it is gone, or 1 s passed). */
export function idle(isolate: ivm.Isolate): Promise<void> {
  if (isolate.isDisposed) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    isolate.compileScript('0').then(() => {}, () => {}),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000))),
  ]).finally(() => clearTimeout(timer));
}
