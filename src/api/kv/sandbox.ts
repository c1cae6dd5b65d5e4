// KV namespaces in the sandbox: the part in every isolate's snapshot, which loads the
// KvNamespace class (./sandbox/module.ts) when a worker with a KV binding registers.

import { createModule } from '../../sandbox/host-calls.ts';
import { utf8Decode, utf8Encode } from '../encoding/sandbox.ts';
import { isReadableStream, streams } from '../streams/sandbox.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import type { BindingMaker } from '../bindings/sandbox.ts';
import type { KvDeps } from './sandbox/module.ts';
import { PromiseResolve, TypeError } from '../../sandbox/primordials.ts';

export function kvMaker(): BindingMaker<'kv'> {
  return createModule<KvDeps, BindingMaker<'kv'>>('kv', {
    utf8Encode,
    utf8Decode,
    isReadableStream,
    sourceOf(stream) {
      const api = streams();
      const readable = stream as Parameters<typeof api.takeSource>[0];
      if (api.locked(readable)) throw new TypeError('This ReadableStream is currently locked to a reader.');
      if (api.isDisturbed(readable)) throw new TypeError('This ReadableStream is disturbed (has already been read from), and cannot be used as a body.');
      // A stream that only wraps a source (a body passed on unread): read the source.
      return api.takeSource(readable, true) ?? api.sourceFromStream(readable);
    },
    streamOf(bytes) {
      let left: Uint8Array | null = bytes;
      return streams().streamFromSource({ pull: () => { const b = left; left = null; return PromiseResolve(b); }, length: bytes.byteLength });
    },
    notSerializable: markNotSerializable,
  });
}
