// Streams in the sandbox: the part that is in every isolate's snapshot. The implementation
// (./sandbox/module.ts) is a sandbox module, evaluated in an isolate when its code first touches
// a stream global or a body's `.body`; until then an isolate pays nothing for it (numbers in
// bench/api-cost.ts and src/runtime/sandbox-modules.ts).

import { createModule } from '../../sandbox/host-calls.ts';
import { encoding } from '../encoding/sandbox.ts';
import { AbortController } from '../events/sandbox.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import type { StreamsApi, StreamsDeps } from './sandbox/module.ts';

export type { StreamsApi };

let api: StreamsApi | undefined;

/** The streams implementation, loaded on first use. */
export function streams(): StreamsApi {
  if (api !== undefined) return api;
  const loaded = createModule<StreamsDeps, StreamsApi>('streams', {
    AbortController,
    // Read when a TextEncoderStream or TextDecoderStream is made: most streams need neither.
    get TextEncoder() { return encoding().TextEncoder as unknown as StreamsDeps['TextEncoder']; },
    get TextDecoder() { return encoding().TextDecoder as unknown as StreamsDeps['TextDecoder']; },
  });
  const c = loaded.classes;
  // HTML §2.7: streams are platform objects without a serialization (they are transferable in
  // browsers; isolet has no transfer of streams).
  markNotSerializable(c.ReadableStream, c.WritableStream, c.TransformStream, c.ReadableStreamDefaultReader,
    c.ReadableStreamBYOBReader, c.WritableStreamDefaultWriter, c.ByteLengthQueuingStrategy, c.CountQueuingStrategy);
  api = loaded;
  return api;
}

/** Whether `value` is a ReadableStream of this runtime; never loads the implementation to say no. */
export function isReadableStream(value: unknown): boolean {
  // Before the module is loaded no ReadableStream of ours can exist.
  return api !== undefined && value instanceof api.classes.ReadableStream;
}

/** The stream globals, by name; each is made on first access (see main.ts). */
export const streamGlobalNames = [
  'ReadableStream', 'ReadableStreamDefaultReader', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest',
  'ReadableStreamDefaultController', 'ReadableByteStreamController', 'WritableStream',
  'WritableStreamDefaultWriter', 'WritableStreamDefaultController', 'TransformStream',
  'TransformStreamDefaultController', 'ByteLengthQueuingStrategy', 'CountQueuingStrategy',
  'TextEncoderStream', 'TextDecoderStream', 'IdentityTransformStream', 'FixedLengthStream',
] as const satisfies readonly (keyof StreamsApi['classes'])[];

const streamClass = (name: string): unknown => streams().classes[name as (typeof streamGlobalNames)[number]];

export function streamGlobals(): Record<string, (name: string) => unknown> {
  const globals: Record<string, (name: string) => unknown> = {};
  for (const name of streamGlobalNames) globals[name] = streamClass;
  return globals;
}
