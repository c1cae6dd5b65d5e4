// Making an isolate: V8 builds it and deserialises the runtime's snapshot into it in a few
// milliseconds of CPU. isolated-vm's constructor spends them on the thread that calls it, which
// in a Runtime is the one that serves every warm request, so each cold start stalled them all.
// isolet's isolated-vm build makes it on a thread of its own (Isolate.createOffThread,
// native/isolated-vm/zz-threaded-create.patch); on the prebuilt binary it is the constructor.
// Disposing one is isolate-teardown.ts's.

import ivm from 'isolated-vm';

interface OffThreadCreation {
  createOffThread?(options: ivm.IsolateOptions): Promise<ivm.Isolate>;
}

export function newIsolate(options: ivm.IsolateOptions): Promise<ivm.Isolate> {
  const isolates = ivm.Isolate as OffThreadCreation;
  if (typeof isolates.createOffThread === 'function') return isolates.createOffThread(options);
  return Promise.resolve(new ivm.Isolate(options));
}
