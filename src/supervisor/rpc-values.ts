// RPC arguments and results between processes (always a list: the arguments, or the result as a
// list of one). On isolet's isolated-vm a value crosses as the bytes its copy holds, copied out of
// the caller's isolate by V8's serializer, the format structured clone is defined by; the
// receiving process makes a copy of those bytes as they are, which V8 reads, checking them, only
// in the isolate it goes into (src/runtime/rpc-value.ts). Neither process reads the value on the
// main thread its tenants share. On a stock build the value is read and written with Node's
// serializer instead, on each side's main thread.
//
// A typed array Node's deserializer reads is a view on the whole message's buffer; copied into an
// isolate as it is, its `.buffer` would show the worker the rest of the message. Each one is
// read into a buffer of its own instead.

import { DefaultDeserializer, serialize } from 'node:v8';
import { BindingError } from '../runtime/types.ts';
import { RpcValue } from '../runtime/rpc-value.ts';
import { MAX_RPC_BYTES } from './messages.ts';

/** The value as bytes; a BindingError (DataCloneError, RangeError) when it cannot cross. */
export function encodeRpcValue(value: RpcValue): Uint8Array {
  let bytes: Uint8Array | undefined;
  try {
    bytes = RpcValue.crossesAsBytes ? value.toBytes() : serialize(value.read());
  } catch (error) {
    throw new BindingError('DataCloneError', `The value could not be serialized: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (bytes === undefined) {
    throw new BindingError('DataCloneError', 'The value holds what cannot cross between runtime processes (shared memory or a WebAssembly.Module).');
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

/**
 * The value the bytes hold (a frame's payload, which must not change after): unread on isolet's
 * isolated-vm; on a stock build read here, every typed array in it given a buffer of its own.
 */
export function decodeRpcValue(bytes: Uint8Array): RpcValue {
  if (RpcValue.crossesAsBytes) return RpcValue.fromBytes(bytes);
  const deserializer = new OwnBuffersDeserializer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  deserializer.readHeader();
  return RpcValue.of(deserializer.readValue());
}
