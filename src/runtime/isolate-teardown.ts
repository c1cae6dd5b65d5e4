// Disposing an isolate, and knowing when V8's teardown of it is over. The teardown costs a
// millisecond or more of CPU (more for a big heap), and a process that exits while a thread tears
// an isolate down crashes (SIGSEGV, or isolated-vm's GetCurrent() assertion).
//
// isolet's isolated-vm build has `isolate.disposeOffThread()` (native/isolated-vm/
// zz-threaded-create.patch): the isolate ends at once, V8 tears it down on one of the threads
// that make isolates (or on the isolate's own thread, if a run of it still holds it) instead of
// the one that serves every warm request, and the promise settles once the teardown is over. On
// the prebuilt binary the isolate is disposed on this thread, and a grace covers what
// isolated-vm's threads may still hold of it: a heuristic, which the patched build needs not.

import type ivm from 'isolated-vm';

interface OffThreadDisposal {
  disposeOffThread?(): Promise<void>;
}

/** Teardowns under way in this process. */
const underWay = new Set<Promise<void>>();

/** The prebuilt binary's grace after a dispose (see the head of this file). */
const STOCK_GRACE_MS = 50;

/**
 * Ends `isolate` at once (nothing runs in it any more); the promise settles once V8's teardown of
 * it is over. Safe for an isolate already disposed, by anyone: it still waits for that teardown.
 * It never rejects.
 */
export function disposeIsolate(isolate: ivm.Isolate): Promise<void> {
  const native = isolate as ivm.Isolate & OffThreadDisposal;
  let teardown: Promise<void>;
  if (typeof native.disposeOffThread === 'function') {
    teardown = native.disposeOffThread().catch(() => {});
  } else {
    try {
      isolate.dispose();
    } catch {}
    teardown = new Promise<void>((resolve) => setTimeout(resolve, STOCK_GRACE_MS));
  }
  underWay.add(teardown);
  void teardown.then(() => underWay.delete(teardown));
  return teardown;
}

/** Resolves once every teardown started so far, and any started while waiting, is over. */
export async function teardownsOver(): Promise<void> {
  while (underWay.size > 0) await Promise.all([...underWay]);
}
