// RPC arguments and results between processes: the structured clones isolated-vm made of them
// (plain data: objects, arrays, Maps, Sets, Dates, errors, bytes, ...) written with V8's own
// serializer, the format structured clone is defined by, and read back on the other side.
//
// A typed array V8's deserializer reads is a view on the whole message's buffer; copied into an
// isolate as it is, its `.buffer` would show the worker the rest of the message. Each one is
// read into a buffer of its own instead.

import { DefaultDeserializer, serialize } from 'node:v8';
import { BindingError } from '../runtime/types.ts';
import { MAX_RPC_BYTES } from './messages.ts';

/** The value as bytes; a BindingError (DataCloneError, RangeError) when it cannot cross. */
export function encodeRpcValue(value: unknown): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = serialize(value);
  } catch (error) {
    throw new BindingError('DataCloneError', `The value could not be serialized: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (bytes.byteLength > MAX_RPC_BYTES) {
    throw new BindingError('RangeError', `RPC arguments or results of ${bytes.byteLength} bytes are over the ${MAX_RPC_BYTES} one call may carry between processes: send large data with fetch().`);
  }
  return bytes;
}

/** Node reads typed arrays (V8's host objects) in this method, which its type declarations leave out. */
const readView = (DefaultDeserializer.prototype as unknown as { _readHostObject(): ArrayBufferView })._readHostObject;

class OwnBuffersDeserializer extends DefaultDeserializer {
  _readHostObject(): unknown {
    const view = readView.call(this);
    const own = new Uint8Array(view.byteLength);
    own.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    if (view instanceof DataView) return new DataView(own.buffer);
    const Type = Buffer.isBuffer(view) ? Uint8Array : (view.constructor as new (buffer: ArrayBuffer) => ArrayBufferView);
    return new Type(own.buffer);
  }
}

/** The value the bytes hold (a frame's payload; every typed array in it gets a buffer of its own). */
export function decodeRpcValue(bytes: Uint8Array): unknown {
  const deserializer = new OwnBuffersDeserializer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  deserializer.readHeader();
  return deserializer.readValue();
}
