// crypto.getRandomValues and crypto.randomUUID. Randomness comes from the host's CSPRNG, never
// from the isolate's Math.random state. crypto.subtle arrives with the Web platform issue.

import { callSync } from '../../sandbox/host.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';

const MAX_BYTES = 65536;

function isIntegerArray(value: unknown): value is Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array {
  return (
    value instanceof Int8Array || value instanceof Uint8Array || value instanceof Uint8ClampedArray ||
    value instanceof Int16Array || value instanceof Uint16Array || value instanceof Int32Array ||
    value instanceof Uint32Array || value instanceof BigInt64Array || value instanceof BigUint64Array
  );
}

function getRandomValues<T>(array: T): T {
  if (!isIntegerArray(array)) {
    throw new DOMExceptionLike(
      "Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is not an integer-typed array",
      'TypeMismatchError',
    );
  }
  if (array.byteLength > MAX_BYTES) {
    throw new DOMExceptionLike(
      `Failed to execute 'getRandomValues' on 'Crypto': The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of bytes of entropy available via this API (${MAX_BYTES}).`,
      'QuotaExceededError',
    );
  }
  requireRequestContext('crypto.getRandomValues()');
  if (array.byteLength > 0) {
    const bytes = new Uint8Array(callSync<ArrayBuffer>('crypto.randomBytes', array.byteLength));
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
  }
  return array;
}

function randomUUID(): string {
  const bytes = getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// DOMException is installed by the Web platform module; look it up at call time.
const DOMExceptionLike = function (message: string, name: string) {
  const Ctor = (globalThis as unknown as { DOMException?: new (m: string, n: string) => Error }).DOMException;
  if (Ctor) return new Ctor(message, name);
  const error = new TypeError(message);
  error.name = name;
  return error;
} as unknown as new (message: string, name: string) => Error;

class Crypto {
  getRandomValues<T>(array: T): T {
    return getRandomValues(array);
  }
  randomUUID(): string {
    return randomUUID();
  }
  get [Symbol.toStringTag]() {
    return 'Crypto';
  }
}

export function cryptoGlobals(): Record<string, unknown> {
  return { crypto: new Crypto(), Crypto };
}
