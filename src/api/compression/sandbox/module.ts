// Compression Streams (https://compression.spec.whatwg.org/) for the sandbox, loaded into an
// isolate the first time its code touches CompressionStream or DecompressionStream (see
// src/runtime/sandbox-modules.ts).
//
// Why in the isolate, in JavaScript (fflate), and not host ops over Node's zlib: the CPU of
// (de)compressing is then the tenant's, counted against its request's CPU limit like any of its
// code (workerd runs zlib on the isolate's thread for the same reason), and the output of a
// decompression bomb fills the tenant's own heap, under its memory limit, not the host's. Host
// ops would be faster per byte but would cost a crossing each way per chunk and hand a tenant
// unmetered host CPU. fflate's streaming classes are small (~12 KB minified for the six used)
// and, being a sandbox module, cost an isolate nothing until it compresses something.
//
// As in workerd, both classes extend TransformStream; formats are "gzip", "deflate" (zlib
// framing) and "deflate-raw".

import { Deflate, Inflate, Gzip, Gunzip, Zlib, Unzlib } from 'fflate';
import type { TransformStream as PolyfillTransformStream } from 'web-streams-polyfill';
import {
  ArrayPrototypeIncludes, ArrayPrototypePush, Error, ObjectDefineProperty, ObjectEntries, String, SymbolToStringTag,
  TypeError, Uint8Array,
} from '../../../sandbox/primordials.ts';

type FlateStream = { push(chunk: Uint8Array, final?: boolean): void; ondata: (data: Uint8Array, final: boolean) => void };

export interface CompressionDeps {
  TransformStream: typeof PolyfillTransformStream;
  chunkBytes(chunk: unknown): Uint8Array | null;
  /** TransformStreamDefaultController's enqueue, as the streams module took it. */
  transformEnqueue(controller: object, chunk: unknown): void;
}

const FORMATS = ['gzip', 'deflate', 'deflate-raw'];

function format(value: unknown, what: string): string {
  const f = String(value);
  if (!ArrayPrototypeIncludes(FORMATS, f)) {
    throw new TypeError(`Failed to construct '${what}': The provided value '${f}' is not a valid enum value of type CompressionFormat.`);
  }
  return f;
}

export function create(deps: CompressionDeps) {
  const { TransformStream, chunkBytes, transformEnqueue } = deps;

  const noOptions = (): never => ({ __proto__: null }) as never;

  function flateTransformer(engine: FlateStream, decompress: boolean) {
    let out: Uint8Array[] = [];
    engine.ondata = (data) => {
      if (data.byteLength > 0) ArrayPrototypePush(out, data);
    };
    const run = (controller: { enqueue(chunk: Uint8Array): void }, chunk: Uint8Array, final: boolean) => {
      try {
        engine.push(chunk, final);
      } catch (error) {
        // fflate's errors (invalid block type, unexpected EOF, ...) as the spec's TypeError.
        const message = error instanceof Error ? error.message : String(error);
        throw new TypeError(decompress ? `Decompression failed: ${message}` : `Compression failed: ${message}`);
      }
      const chunks = out;
      out = [];
      for (let i = 0; i < chunks.length; i++) transformEnqueue(controller, chunks[i]!);
    };
    // No prototype: the stream reads `start` and `cancel` too, which a tenant may have put on Object.prototype.
    return {
      __proto__: null,
      transform(chunk: unknown, controller: { enqueue(chunk: Uint8Array): void }) {
        const bytes = chunkBytes(chunk);
        if (bytes === null) throw new TypeError("The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.");
        if (bytes.byteLength > 0) run(controller, bytes, false);
      },
      flush(controller: { enqueue(chunk: Uint8Array): void }) {
        run(controller, new Uint8Array(0), true);
      },
    };
  }

  class CompressionStream extends TransformStream<unknown, Uint8Array> {
    constructor(compressionFormat: string) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'CompressionStream': 1 argument required, but only 0 present.");
      const f = format(compressionFormat, 'CompressionStream');
      // A gzip header's MTIME is 0, as zlib (and so workerd) writes it: fflate would write the
      // clock's time, read through the realm's replaceable Date.now and Date.prototype.valueOf.
      // Options without a prototype (fflate reads `level`, `mem`, `filename`, ... from them).
      const engine = f === 'gzip' ? new Gzip({ __proto__: null, mtime: 0 } as never) : f === 'deflate' ? new Zlib(noOptions()) : new Deflate(noOptions());
      super(flateTransformer(engine as unknown as FlateStream, false));
    }
  }

  class DecompressionStream extends TransformStream<unknown, Uint8Array> {
    constructor(compressionFormat: string) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'DecompressionStream': 1 argument required, but only 0 present.");
      const f = format(compressionFormat, 'DecompressionStream');
      const engine = f === 'gzip' ? new Gunzip(noOptions()) : f === 'deflate' ? new Unzlib(noOptions()) : new Inflate(noOptions());
      super(flateTransformer(engine as unknown as FlateStream, true));
    }
  }

  for (const [name, C] of ObjectEntries({ CompressionStream, DecompressionStream })) {
    ObjectDefineProperty(C, 'name', { __proto__: null, value: name, configurable: true });
    ObjectDefineProperty(C.prototype, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
  }
  return { CompressionStream, DecompressionStream };
}

export type CompressionApi = ReturnType<typeof create>;
