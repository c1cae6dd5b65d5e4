// CompressionStream and DecompressionStream: the part in every isolate's snapshot. The
// implementation (./sandbox/module.ts, fflate) is a sandbox module, evaluated in an isolate on
// first use; it needs the streams module, which it loads too.

import { createModule } from '../../sandbox/host-calls.ts';
import { streams } from '../streams/sandbox.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import type { CompressionApi, CompressionDeps } from './sandbox/module.ts';

let api: CompressionApi | undefined;

export function compression(): CompressionApi {
  if (api !== undefined) return api;
  const s = streams();
  const loaded = createModule<CompressionDeps, CompressionApi>('compression', {
    TransformStream: s.classes.TransformStream,
    chunkBytes: s.chunkBytes,
    transformEnqueue: s.transformEnqueue,
  });
  markNotSerializable(loaded.CompressionStream, loaded.DecompressionStream);
  api = loaded;
  return api;
}

export function compressionGlobals(): Record<string, () => unknown> {
  return {
    CompressionStream: () => compression().CompressionStream,
    DecompressionStream: () => compression().DecompressionStream,
  };
}
