// The `crypto` global: getRandomValues and randomUUID, with crypto.subtle (WebCrypto),
// crypto.DigestStream and the SubtleCrypto and CryptoKey globals in a sandbox module loaded on
// first use (./sandbox/module.ts): a hello-world worker never touches them, and every byte of
// code in the snapshot is heap in every idle isolate.
//
// Randomness comes from the host's CSPRNG, never from the isolate's Math.random state.

import { callAsync, callSync, loadModule } from '../../sandbox/host.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import { DOMException } from '../events/sandbox.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import { streams } from '../streams/sandbox.ts';
import { utf8Encode } from '../encoding/sandbox.ts';
import type { CryptoApi, CryptoDeps } from './sandbox/module.ts';

let api: CryptoApi | undefined;

function subtleApi(): CryptoApi {
  if (api !== undefined) return api;
  // The module is evaluated when first used, after tenant code may have patched the built-ins
  // it runs on, so it is handed no more than crypto.subtle reaches anyway: its own host
  // operations, checked against a list no prototype can add to (a literal: no built-in runs).
  const ops = {
    __proto__: null, 'crypto.digest': 1, 'crypto.generateKey': 1, 'crypto.importKey': 1, 'crypto.exportKey': 1,
    'crypto.sign': 1, 'crypto.verify': 1, 'crypto.encrypt': 1, 'crypto.decrypt': 1, 'crypto.deriveBits': 1,
    'crypto.deriveKey': 1, 'crypto.wrapKey': 1, 'crypto.unwrapKey': 1, 'crypto.releaseKeys': 1,
    'crypto.digestStream.open': 1, 'crypto.digestStream.write': 1, 'crypto.digestStream.close': 1,
    'crypto.digestStream.abort': 1,
  } as unknown as Record<string, 1 | undefined>;
  const op = (name: unknown): string => {
    if (typeof name !== 'string' || ops[name] !== 1) throw new TypeError('Not a crypto operation.');
    return name;
  };
  api = loadModule<{ create(deps: CryptoDeps): CryptoApi }>('crypto').create({
    callSync: (name, ...args) => callSync(op(name), ...args),
    callAsync: (name, ...args) => callAsync(op(name), ...args),
    DOMException,
    utf8Encode,
    WritableStream: () => streams().classes.WritableStream as unknown as ReturnType<CryptoDeps['WritableStream']>,
    markNotSerializable,
  });
  return api;
}

const isView = ArrayBuffer.isView;

const MAX_BYTES = 65536;

function isIntegerArray(value: unknown): value is Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array {
  return (
    value instanceof Int8Array || value instanceof Uint8Array || value instanceof Uint8ClampedArray ||
    value instanceof Int16Array || value instanceof Uint16Array || value instanceof Int32Array ||
    value instanceof Uint32Array || value instanceof BigInt64Array || value instanceof BigUint64Array
  );
}

function getRandomValues<T>(array: T): T {
  // WebIDL: an argument that is no ArrayBufferView at all fails conversion (a TypeError, as in
  // workerd); a view of the wrong element type is WebCrypto's TypeMismatchError.
  if (!isView(array)) {
    throw new TypeError("Failed to execute 'getRandomValues' on 'Crypto': parameter 1 is not of type 'ArrayBufferView'.");
  }
  if (!isIntegerArray(array)) {
    throw new DOMException(
      "Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is not an integer-typed array",
      'TypeMismatchError',
    );
  }
  if (array.byteLength > MAX_BYTES) {
    throw new DOMException(
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

// ---------------------------------------------------------------------------------------------
// Crypto (WebCrypto §10)

const ILLEGAL_INVOCATION = 'Illegal invocation: function called with incorrect `this` reference. ' +
  'See https://developers.cloudflare.com/workers/observability/errors/#illegal-invocation-errors for details.';

class Crypto {
  #brand = true;

  static #check(self: unknown): void {
    // WebIDL: an operation called on anything but an instance (e.g. a detached method).
    if (typeof self !== 'object' || self === null || !(#brand in self)) throw new TypeError(ILLEGAL_INVOCATION);
  }

  getRandomValues<T>(array: T): T {
    Crypto.#check(this);
    return getRandomValues(array);
  }
  randomUUID(): string {
    Crypto.#check(this);
    return randomUUID();
  }
  /** [SameObject] */
  get subtle(): object {
    return subtleApi().subtle;
  }
  /** Cloudflare Workers' crypto.DigestStream. */
  get DigestStream(): Function {
    return subtleApi().DigestStream();
  }
  get [Symbol.toStringTag]() {
    return 'Crypto';
  }
}

// A platform object without a serialization: structuredClone refuses it (DataCloneError).
markNotSerializable(Crypto);

export function cryptoGlobals(): Record<string, unknown> {
  // The bundler renames classes; tenants see `.name` (constructor.name, stack traces).
  Object.defineProperty(Crypto, 'name', { value: 'Crypto', configurable: true });
  return { crypto: new Crypto(), Crypto };
}

/** Globals made on first access (see main.ts): they load the module. */
export function lazyCryptoGlobals(): Record<string, (name: string) => unknown> {
  const make = (name: string): unknown => subtleApi()[name as 'SubtleCrypto' | 'CryptoKey'];
  return { SubtleCrypto: make, CryptoKey: make };
}
