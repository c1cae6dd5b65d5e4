// The `crypto` global (WebCrypto, W3C Web Cryptography API): getRandomValues, randomUUID,
// crypto.subtle, CryptoKey and crypto.DigestStream, with Cloudflare Workers' additions (MD5 in
// digest, timingSafeEqual). A sandbox module (see src/runtime/sandbox-modules.ts): evaluated in
// an isolate the first time its code reads crypto, Crypto, SubtleCrypto or CryptoKey. A
// hello-world worker never does, and in the snapshot this code was about 28 KB of every idle
// isolate's heap.
//
// Randomness comes from the host's CSPRNG, never from the isolate's Math.random state.
//
// Every crypto.subtle operation runs on the host in Node's native WebCrypto (see ../host.ts for
// the operations and their argument shapes): this half only turns a call's arguments into plain
// copies (WebIDL conversion, §18.4 "normalize an algorithm" as far as copying needs), crosses
// once with callAsync, and wraps the answer (ArrayBuffers, JWKs, booleans, new key handles).
//
// A CryptoKey here is an opaque handle: what it shows (type, extractable, algorithm, usages)
// and, in a private field, the id of the real key in this isolate's scope on the host. Tenant
// code cannot construct one, nor read or set its id; the host checks every id anyway.

import { MAX_CALL_BYTES, type KeyInfo, type OperationCalls } from '../../../bridge/operations.ts';
import {
  ArrayBuffer, ArrayBufferIsView, ArrayBufferPrototypeGetByteLength, ArrayBufferPrototypeGetResizable,
  ArrayBufferPrototypeSlice, ArrayFrom, ArrayIsArray, ArrayPrototypeConcat, ArrayPrototypeFind, ArrayPrototypeIncludes, ArrayPrototypePush, ArrayPrototypeSplice,
  Boolean, DataViewPrototypeGetBuffer, DataViewPrototypeGetByteLength, DataViewPrototypeGetByteOffset, Error,
  FinalizationRegistry, FinalizationRegistryPrototypeRegister, JSONStringify, MathMin, Number, NumberPrototypeToString,
  ObjectDefineProperty, Promise, PromisePrototypeThen, PromiseReject, ReflectApply, String, StringPrototypePadStart,
  StringPrototypeSlice, StringPrototypeToUpperCase, Symbol, SymbolIterator, SymbolToStringTag, SyntaxError, TypeError,
  TypedArrayPrototypeGetBuffer, TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeGetSymbolToStringTag, TypedArrayPrototypeSet, Uint8Array, safeArray,
} from '../../../sandbox/primordials.ts';
/** What the module uses from the runtime in the snapshot (one copy of each per isolate). */
export interface CryptoDeps {
  callSync: OperationCalls['callSync'];
  callAsync: OperationCalls['callAsync'];
  callAsyncCarrying: OperationCalls['callAsyncCarrying'];
  DOMException: new (message?: string, name?: string) => Error;
  utf8Encode(input: string): Uint8Array;
  /** The WritableStream class (loads the streams module). */
  WritableStream(): new (sink: object) => object;
  markNotSerializable(...classes: { prototype: object }[]): void;
  requireRequestContext(what: string): void;
}

export interface CryptoApi {
  /** The `crypto` global. */
  crypto: object;
  Crypto: Function;
  SubtleCrypto: Function;
  CryptoKey: Function;
}

let callSync: CryptoDeps['callSync'];
let callAsync: CryptoDeps['callAsync'];
let callAsyncCarrying: CryptoDeps['callAsyncCarrying'];
let DOMException: CryptoDeps['DOMException'];
let utf8Encode: CryptoDeps['utf8Encode'];
let writableStream: CryptoDeps['WritableStream'];
let markNotSerializable: CryptoDeps['markNotSerializable'];
let requireRequestContext: CryptoDeps['requireRequestContext'];
// ---------------------------------------------------------------------------------------------
// BufferSources, read with the built-ins the snapshot captured, so a tenant who patches
// ArrayBuffer.prototype cannot make the runtime copy something other than the bytes it was given.

function isArrayBuffer(value: unknown): value is ArrayBuffer {
  if (typeof value !== 'object' || value === null) return false;
  try {
    ArrayBufferPrototypeGetByteLength(value as ArrayBuffer);
    return true;
  } catch {
    return false;
  }
}

/** The buffer, offset and length a BufferSource covers, or undefined for anything else. */
function bufferRange(value: unknown): [ArrayBuffer, number, number] | undefined {
  if (isArrayBuffer(value)) return [value, 0, ArrayBufferPrototypeGetByteLength(value)];
  if (!ArrayBufferIsView(value)) return undefined;
  // A view that is no typed array is a DataView.
  if (TypedArrayPrototypeGetSymbolToStringTag(value) === undefined) {
    const view = value as DataView;
    return [DataViewPrototypeGetBuffer(view) as ArrayBuffer, DataViewPrototypeGetByteOffset(view), DataViewPrototypeGetByteLength(view)];
  }
  return [TypedArrayPrototypeGetBuffer(value) as ArrayBuffer, TypedArrayPrototypeGetByteOffset(value), TypedArrayPrototypeGetByteLength(value)];
}

/**
 * The bytes of a BufferSource, to be copied (WebCrypto: "a copy of the bytes held by" the
 * argument, taken when the method is called, so later writes by the caller change nothing).
 * The crossing itself copies, synchronously, so a whole fixed-length ArrayBuffer goes as it is;
 * only a view of part of a buffer (or a resizable one) is sliced here first. That slice is the
 * expensive half of a large digest's crossing (about 1 ms of the worker's CPU per MB; the crossing about half that).
 */
function copyBytes(value: unknown, what: string): ArrayBuffer {
  const range = bufferRange(value);
  if (!range) throw new TypeError(`${what} must be an ArrayBuffer or ArrayBufferView.`);
  const buffer = range[0], offset = range[1], length = range[2];
  if (offset === 0 && length === ArrayBufferPrototypeGetByteLength(buffer) && !ArrayBufferPrototypeGetResizable(buffer)) {
    return buffer;
  }
  return ArrayBufferPrototypeSlice(buffer, offset, offset + length);
}

/** How a BufferSource argument crosses (see dataArg). */
interface DataArg {
  /** The bytes' copy, or past one call's bound their length. */
  arg: ArrayBuffer | number;
  /** The copy the call carries for the host to take a piece at a time, when `arg` is its length. */
  carried: Uint8Array | undefined;
}

/**
 * A BufferSource argument of an operation: a copy of its bytes, taken now (as copyBytes). Up to
 * one call's bound (MAX_CALL_BYTES) the copy is the argument; past it the call carries the copy,
 * for the host to take a piece at a time, and the argument is its length: an argument is copied
 * onto the host's main thread in one go, which every tenant shares (a 100 MB digest held it for
 * 2 s).
 */
function dataArg(value: unknown, what: string): DataArg {
  const range = bufferRange(value);
  if (range && range[2] > MAX_CALL_BYTES) {
    const copy = ArrayBufferPrototypeSlice(range[0], range[1], range[1] + range[2]);
    return { __proto__: null, arg: range[2], carried: new Uint8Array(copy) } as DataArg;
  }
  return { __proto__: null, arg: copyBytes(value, what), carried: undefined } as DataArg;
}

function viewOf(value: unknown, what: string): Uint8Array {
  const range = bufferRange(value);
  if (!range) throw new TypeError(`${what} must be an ArrayBuffer or ArrayBufferView.`);
  return new Uint8Array(range[0], range[1], range[2]);
}

// ---------------------------------------------------------------------------------------------
// CryptoKey (WebCrypto §13)

const CONSTRUCT = Symbol('CryptoKey');
let keyIdOf: (key: unknown) => string | undefined;

// Keys whose handles were garbage collected; the host is told with the next key-creating call
// (one crossing fewer than telling it from the finalizer), so a worker that imports a key per
// request does not run into the per-isolate key limit. Created on first use: the bundle is
// snapshotted, and what it allocates at load every isolate pays for.
let registry: FinalizationRegistry<string> | undefined;
const releasedKeyIds: string[] = [];

function releaseCollectedKeys(): void {
  if (releasedKeyIds.length > 0) callSync('crypto.releaseKeys', ArrayPrototypeSplice(releasedKeyIds, 0));
}

class CryptoKey {
  #id: string;
  #type: KeyInfo['type'];
  #extractable: boolean;
  #algorithm: Record<string, unknown>;
  #usages: string[];

  constructor(token?: unknown, info?: KeyInfo) {
    if (token !== CONSTRUCT || !info) throw new TypeError('Illegal constructor');
    this.#id = info.id;
    this.#type = info.type;
    this.#extractable = info.extractable;
    this.#algorithm = keyAlgorithm(info.algorithm);
    this.#usages = info.usages;
    FinalizationRegistryPrototypeRegister(registry ??= new FinalizationRegistry((id) => void ArrayPrototypePush(releasedKeyIds, id)), this, info.id);
  }

  get type(): string { return this.#type; }
  get extractable(): boolean { return this.#extractable; }
  /** The same object on every read (the spec's [[algorithm_cached]]). */
  get algorithm(): object { return this.#algorithm; }
  get usages(): string[] { return this.#usages; }

  static {
    keyIdOf = (key) => (typeof key === 'object' && key !== null && #id in key ? key.#id : undefined);
  }
}
ObjectDefineProperty(CryptoKey.prototype, SymbolToStringTag, { __proto__: null, value: 'CryptoKey', configurable: true });

/** A KeyAlgorithm dictionary (§13.x) from the host's copy: publicExponent is a Uint8Array. */
function keyAlgorithm(source: Record<string, unknown>): Record<string, unknown> {
  const algorithm: Record<string, unknown> = { ...source };
  if (source.publicExponent instanceof ArrayBuffer) algorithm.publicExponent = new Uint8Array(source.publicExponent);
  return algorithm;
}

function newKey(info: KeyInfo): CryptoKey {
  return new CryptoKey(CONSTRUCT, info);
}

function keyResult(result: KeyInfo | { publicKey: KeyInfo; privateKey: KeyInfo }): CryptoKey | { publicKey: CryptoKey; privateKey: CryptoKey } {
  if ('publicKey' in result) return { publicKey: newKey(result.publicKey), privateKey: newKey(result.privateKey) };
  return newKey(result);
}

function keyId(value: unknown, method: string, what: string): string {
  const id = keyIdOf(value);
  if (id === undefined) throw new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': ${what} is not of type 'CryptoKey'.`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Argument conversion: plain copies the host can check member by member.

const NUMBER_MEMBERS = ['length', 'modulusLength', 'tagLength', 'saltLength', 'iterations'] as const;
const BYTES_MEMBERS = ['iv', 'counter', 'additionalData', 'label', 'salt', 'info', 'publicExponent'] as const;
const JWK_MEMBERS = ['kty', 'use', 'alg', 'crv', 'x', 'y', 'd', 'n', 'e', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const;

function hashIdentifier(value: unknown): { name: string } {
  if (typeof value === 'string') return { name: value };
  if (typeof value === 'object' && value !== null) {
    const name = (value as { name?: unknown }).name;
    if (name === undefined) throw new TypeError('Algorithm: hash is missing its "name".');
    return { name: String(name) };
  }
  throw new TypeError('Algorithm: hash must be a string or an object with a name.');
}

/**
 * The members each algorithm's dictionaries have (WebCrypto §18.4 "normalize an algorithm" reads
 * only those of the algorithm's dictionary type), over all its operations, by upper-case name.
 * Reading every member for every algorithm would take what a tenant put on Object.prototype
 * (a `hash`, an `iv`) as members of `{ name: 'SHA-256' }`. An unknown name reads none: the host
 * refuses it by name.
 */
const ALGORITHM_MEMBERS: Record<string, readonly string[] | undefined> = {
  __proto__: null,
  'SHA-1': [], 'SHA-256': [], 'SHA-384': [], 'SHA-512': [], MD5: [],
  HMAC: ['hash', 'length'],
  'AES-GCM': ['length', 'tagLength', 'iv', 'additionalData'],
  'AES-CBC': ['length', 'iv'],
  'AES-CTR': ['length', 'counter'],
  'AES-KW': ['length'],
  PBKDF2: ['hash', 'iterations', 'salt'],
  HKDF: ['hash', 'salt', 'info'],
  ECDSA: ['hash', 'namedCurve'],
  ECDH: ['namedCurve', 'public'],
  ED25519: [],
  X25519: ['public'],
  'RSASSA-PKCS1-V1_5': ['hash', 'modulusLength', 'publicExponent'],
  'RSA-PSS': ['hash', 'modulusLength', 'saltLength', 'publicExponent'],
  'RSA-OAEP': ['hash', 'modulusLength', 'publicExponent', 'label'],
} as never;

/** An AlgorithmIdentifier as a plain dictionary of strings, numbers, ArrayBuffers and key ids. */
function algorithmArg(value: unknown, method: string): Record<string, unknown> {
  if (typeof value === 'string') return { name: value };
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': the algorithm must be a string or an object.`);
  }
  const dict = value as Record<string, unknown>;
  const name = dict.name;
  if (name === undefined) throw new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': the algorithm is missing its "name".`);
  const out: Record<string, unknown> = { name: String(name) };
  const members = ALGORITHM_MEMBERS[StringPrototypeToUpperCase(out.name as string)] ?? [];
  const has = (member: string): boolean => ArrayPrototypeIncludes(members, member);
  const hash = has('hash') ? dict.hash : undefined;
  if (hash !== undefined) out.hash = hashIdentifier(hash);
  for (const member of safeArray(NUMBER_MEMBERS)) {
    const v = has(member) ? dict[member] : undefined;
    if (v !== undefined) out[member] = Number(v);
  }
  for (const member of safeArray(BYTES_MEMBERS)) {
    const v = has(member) ? dict[member] : undefined;
    if (v !== undefined) out[member] = copyBytes(v, `algorithm.${member}`);
  }
  const namedCurve = has('namedCurve') ? dict.namedCurve : undefined;
  if (namedCurve !== undefined) out.namedCurve = String(namedCurve);
  const publicKey = has('public') ? dict.public : undefined;
  if (publicKey !== undefined) out.public = keyId(publicKey, method, 'algorithm.public');
  return out;
}

function usagesArg(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || typeof (value as Iterable<unknown>)[SymbolIterator] !== 'function') {
    throw new TypeError('keyUsages must be a sequence of KeyUsage strings.');
  }
  // An array by index (as workerd reads a sequence given as an array: the realm's array
  // iterator is the tenant's to replace), other iterables iterated.
  const usages = ArrayIsArray(value) ? safeArray(value) : value as Iterable<unknown>;
  const out: string[] = [];
  for (const usage of usages) {
    ArrayPrototypePush(out, String(usage));
    if (out.length > 16) throw new TypeError('keyUsages has too many entries.');
  }
  return out;
}

/** A JsonWebKey dictionary (WebCrypto §16), its members read once and copied. */
function jwkArg(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || bufferRange(value)) {
    throw new TypeError('Key data in "jwk" format must be a JsonWebKey object.');
  }
  const jwk = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const member of safeArray(JWK_MEMBERS)) {
    const v = jwk[member];
    if (v !== undefined) out[member] = String(v);
  }
  if (jwk.ext !== undefined) out.ext = Boolean(jwk.ext);
  if (jwk.key_ops !== undefined) out.key_ops = usagesArg(jwk.key_ops);
  if (jwk.oth !== undefined) {
    out.oth = ArrayFrom(jwk.oth as Iterable<Record<string, unknown>>, (prime) => ({
      r: String(prime?.r), d: String(prime?.d), t: String(prime?.t),
    }));
  }
  return out;
}

function keyDataArg(format: string, value: unknown): ArrayBuffer | Record<string, unknown> {
  if (format === 'jwk') return jwkArg(value);
  if (!bufferRange(value)) throw new TypeError(`Key data in "${format}" format must be an ArrayBuffer or ArrayBufferView.`);
  return copyBytes(value, 'keyData');
}

function requireArgs(method: string, count: number, given: number): void {
  if (given < count) {
    throw new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': ${count} arguments required, but only ${given} present.`);
  }
}

/**
 * Runs a SubtleCrypto method: every error, argument conversion included, is a rejection
 * (WebIDL: a promise-returning operation never throws). The bridge turns a host error named
 * SyntaxError into the JavaScript SyntaxError; in WebCrypto it is the DOMException.
 */
function operation<T>(body: () => Promise<T>): Promise<T> {
  try {
    return PromisePrototypeThen(body(), undefined, (error: unknown) => {
      if (error instanceof SyntaxError) throw new DOMException(error.message, 'SyntaxError');
      throw error;
    });
  } catch (error) {
    return PromiseReject(error);
  }
}

// ---------------------------------------------------------------------------------------------
// SubtleCrypto (WebCrypto §14)

let constructingSubtle = false;

class SubtleCrypto {
  constructor() {
    if (!constructingSubtle) throw new TypeError('Illegal constructor');
  }

  digest(algorithm: unknown, data: unknown): Promise<ArrayBuffer> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('digest', 2, n);
      const alg = algorithmArg(algorithm, 'digest');
      const input = dataArg(data, 'data');
      return callAsyncCarrying(input.carried, 'crypto.digest', alg, input.arg);
    });
  }

  generateKey(algorithm: unknown, extractable: unknown, keyUsages: unknown): Promise<unknown> {
    const n = arguments.length;
    return operation(async () => {
      requireArgs('generateKey', 3, n);
      const args = [algorithmArg(algorithm, 'generateKey'), Boolean(extractable), usagesArg(keyUsages)];
      releaseCollectedKeys();
      return keyResult(await ReflectApply(callAsync, undefined, ArrayPrototypeConcat<unknown>(['crypto.generateKey'], args)));
    });
  }

  importKey(format: unknown, keyData: unknown, algorithm: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey> {
    const n = arguments.length;
    return operation(async () => {
      requireArgs('importKey', 5, n);
      const fmt = String(format);
      const args = [fmt, keyDataArg(fmt, keyData), algorithmArg(algorithm, 'importKey'), Boolean(extractable), usagesArg(keyUsages)];
      releaseCollectedKeys();
      return newKey(await (ReflectApply(callAsync, undefined, ArrayPrototypeConcat<unknown>(['crypto.importKey'], args)) as Promise<KeyInfo>));
    });
  }

  exportKey(format: unknown, key: unknown): Promise<ArrayBuffer | Record<string, unknown>> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('exportKey', 2, n);
      return callAsync('crypto.exportKey', String(format), keyId(key, 'exportKey', 'key'));
    });
  }

  sign(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('sign', 3, n);
      const alg = algorithmArg(algorithm, 'sign'), id = keyId(key, 'sign', 'key');
      const input = dataArg(data, 'data');
      return callAsyncCarrying(input.carried, 'crypto.sign', alg, id, input.arg);
    });
  }

  verify(algorithm: unknown, key: unknown, signature: unknown, data: unknown): Promise<boolean> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('verify', 4, n);
      const alg = algorithmArg(algorithm, 'verify'), id = keyId(key, 'verify', 'key');
      // No algorithm's signature comes near one call's bound: a longer one crosses as its length
      // alone, and the host answers false once the algorithm and key hold.
      const signatureRange = bufferRange(signature);
      const sig = signatureRange && signatureRange[2] > MAX_CALL_BYTES ? signatureRange[2] : copyBytes(signature, 'signature');
      const input = dataArg(data, 'data');
      return callAsyncCarrying(input.carried, 'crypto.verify', alg, id, sig, input.arg);
    });
  }

  encrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('encrypt', 3, n);
      const alg = algorithmArg(algorithm, 'encrypt'), id = keyId(key, 'encrypt', 'key');
      const input = dataArg(data, 'data');
      return callAsyncCarrying(input.carried, 'crypto.encrypt', alg, id, input.arg);
    });
  }

  decrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('decrypt', 3, n);
      const alg = algorithmArg(algorithm, 'decrypt'), id = keyId(key, 'decrypt', 'key');
      const input = dataArg(data, 'data');
      return callAsyncCarrying(input.carried, 'crypto.decrypt', alg, id, input.arg);
    });
  }

  deriveBits(algorithm: unknown, baseKey: unknown, length?: unknown): Promise<ArrayBuffer> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('deriveBits', 2, n);
      const bits = length === undefined || length === null ? null : Number(length);
      return callAsync('crypto.deriveBits', algorithmArg(algorithm, 'deriveBits'), keyId(baseKey, 'deriveBits', 'baseKey'), bits);
    });
  }

  deriveKey(algorithm: unknown, baseKey: unknown, derivedKeyType: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey> {
    const n = arguments.length;
    return operation(async () => {
      requireArgs('deriveKey', 5, n);
      const args = [
        algorithmArg(algorithm, 'deriveKey'), keyId(baseKey, 'deriveKey', 'baseKey'),
        algorithmArg(derivedKeyType, 'deriveKey'), Boolean(extractable), usagesArg(keyUsages),
      ];
      releaseCollectedKeys();
      return newKey(await (ReflectApply(callAsync, undefined, ArrayPrototypeConcat<unknown>(['crypto.deriveKey'], args)) as Promise<KeyInfo>));
    });
  }

  wrapKey(format: unknown, key: unknown, wrappingKey: unknown, wrapAlgorithm: unknown): Promise<ArrayBuffer> {
    const n = arguments.length;
    return operation(() => {
      requireArgs('wrapKey', 4, n);
      return callAsync('crypto.wrapKey', String(format), keyId(key, 'wrapKey', 'key'),
        keyId(wrappingKey, 'wrapKey', 'wrappingKey'), algorithmArg(wrapAlgorithm, 'wrapKey'));
    });
  }

  unwrapKey(
    format: unknown, wrappedKey: unknown, unwrappingKey: unknown, unwrapAlgorithm: unknown,
    unwrappedKeyAlgorithm: unknown, extractable: unknown, keyUsages: unknown,
  ): Promise<CryptoKey> {
    const n = arguments.length;
    return operation(async () => {
      requireArgs('unwrapKey', 7, n);
      const args = [
        String(format), copyBytes(wrappedKey, 'wrappedKey'), keyId(unwrappingKey, 'unwrapKey', 'unwrappingKey'),
        algorithmArg(unwrapAlgorithm, 'unwrapKey'), algorithmArg(unwrappedKeyAlgorithm, 'unwrapKey'),
        Boolean(extractable), usagesArg(keyUsages),
      ];
      releaseCollectedKeys();
      return newKey(await (ReflectApply(callAsync, undefined, ArrayPrototypeConcat<unknown>(['crypto.unwrapKey'], args)) as Promise<KeyInfo>));
    });
  }

  /**
   * Cloudflare Workers' extension: compares two BufferSources in time that depends only on
   * their length. Synchronous and in the isolate: no crossing, no copy. The loop touches every
   * byte and folds the differences with OR, with no early exit.
   */
  timingSafeEqual(a: unknown, b: unknown): boolean {
    if (arguments.length < 2) {
      throw new TypeError(`Failed to execute 'timingSafeEqual' on 'SubtleCrypto': 2 arguments required, but only ${arguments.length} present.`);
    }
    const left = viewOf(a, 'a');
    const right = viewOf(b, 'b');
    if (left.byteLength !== right.byteLength) throw new TypeError('Input buffers must have the same byte length.');
    let difference = 0;
    for (let i = 0; i < left.byteLength; i++) difference |= left[i]! ^ right[i]!;
    return difference === 0;
  }
}
ObjectDefineProperty(SubtleCrypto.prototype, SymbolToStringTag, { __proto__: null, value: 'SubtleCrypto', configurable: true });

// ---------------------------------------------------------------------------------------------
// crypto.DigestStream (Cloudflare Workers): a WritableStream that hashes what is written to it;
// `digest` resolves with the hash once the stream is closed. The hash runs on the host, one
// synchronous crossing per chunk (host.ts), so no chunk is kept here. Made on first access: it
// extends WritableStream, which is itself loaded on first use.

const DIGEST_STREAM_NAMES = ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512', 'MD5'];
// Streams garbage collected while still open; the host drops their hashes at the next open.
let streamRegistry: FinalizationRegistry<string> | undefined;
const releasedStreamIds: string[] = [];
let DigestStreamClass: Function | undefined;

function digestStreamAlgorithm(algorithm: unknown): string {
  const name = typeof algorithm === 'string' ? algorithm
    : typeof algorithm === 'object' && algorithm !== null ? String((algorithm as { name?: unknown }).name) : undefined;
  const canonical = name === undefined ? undefined : ArrayPrototypeFind(DIGEST_STREAM_NAMES, (n) => n === StringPrototypeToUpperCase(name));
  if (canonical === undefined) {
    throw new DOMException(`Unrecognized or unimplemented digest algorithm requested: ${JSONStringify(StringPrototypeSlice(String(name), 0, 64))}.`, 'NotSupportedError');
  }
  return canonical;
}

function digestStreamClass(): Function {
  if (DigestStreamClass) return DigestStreamClass;
  const WritableStream = writableStream();

  class DigestStream extends WritableStream {
    #digest: Promise<ArrayBuffer>;
    #bytesWritten = 0;

    constructor(algorithm: unknown) {
      const name = digestStreamAlgorithm(algorithm);
      const id = callSync('crypto.digestStream.open', name, ArrayPrototypeSplice(releasedStreamIds, 0));
      let resolve!: (digest: ArrayBuffer) => void;
      let reject!: (reason: unknown) => void;
      const digest = new Promise<ArrayBuffer>((res, rej) => { resolve = res; reject = rej; });
      // Nobody need await `digest` when the stream fails; the writer sees the error too.
      PromisePrototypeThen(digest, undefined, () => {});
      const counted = (n: number) => { self.#bytesWritten += n; };
      let self: DigestStream;
      super({
        __proto__: null,
        write(chunk: unknown) {
          try {
            counted(writePieces(id, typeof chunk === 'string' ? utf8Encode(chunk) : chunk));
          } catch (error) {
            callSync('crypto.digestStream.abort', id);
            reject(error);
            throw error;
          }
        },
        close() {
          resolve(callSync('crypto.digestStream.close', id));
        },
        abort(reason: unknown) {
          callSync('crypto.digestStream.abort', id);
          reject(reason);
        },
      });
      self = this;
      this.#digest = digest;
      FinalizationRegistryPrototypeRegister(streamRegistry ??= new FinalizationRegistry((released) => void ArrayPrototypePush(releasedStreamIds, released)), this, id);
    }

    /** Resolves with the digest (an ArrayBuffer) when the stream closes; rejects if it errors. */
    get digest(): Promise<ArrayBuffer> { return this.#digest; }
    get bytesWritten(): number { return this.#bytesWritten; }
  }
  ObjectDefineProperty(DigestStream, 'name', { __proto__: null, value: 'DigestStream', configurable: true });
  ObjectDefineProperty(DigestStream.prototype, SymbolToStringTag, { __proto__: null, value: 'DigestStream', configurable: true });
  markNotSerializable(DigestStream);
  DigestStreamClass = DigestStream;
  return DigestStream;
}

/**
 * Sends a chunk's bytes to the host's hash, in pieces of at most MAX_CALL_BYTES: the host
 * hashes on its main thread, which every tenant shares. Returns how many bytes it sent.
 */
function writePieces(id: string, chunk: unknown): number {
  const range = bufferRange(chunk);
  if (!range) throw new TypeError('DigestStream is a byte stream: write ArrayBuffers, ArrayBufferViews or strings to it.');
  const buffer = range[0], offset = range[1], length = range[2];
  if (length <= MAX_CALL_BYTES) {
    callSync('crypto.digestStream.write', id, copyBytes(chunk, 'chunk'));
    return length;
  }
  for (let at = 0; at < length; at += MAX_CALL_BYTES) {
    callSync('crypto.digestStream.write', id, ArrayBufferPrototypeSlice(buffer, offset + at, offset + MathMin(length, at + MAX_CALL_BYTES)));
  }
  return length;
}


// ---------------------------------------------------------------------------------------------
// getRandomValues and randomUUID (WebCrypto §10.1)

const MAX_BYTES = 65536;

// The integer typed arrays by their [[TypedArrayName]]: no instanceof (the globals are the
// tenant's to replace, and Symbol.hasInstance with them).
const INTEGER_ARRAYS: Record<string, true | undefined> = {
  __proto__: null, Int8Array: true, Uint8Array: true, Uint8ClampedArray: true, Int16Array: true, Uint16Array: true,
  Int32Array: true, Uint32Array: true, BigInt64Array: true, BigUint64Array: true,
} as never;

function isIntegerArray(value: unknown): value is Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array {
  const name = TypedArrayPrototypeGetSymbolToStringTag(value);
  return name !== undefined && INTEGER_ARRAYS[name] === true;
}

function getRandomValues<T>(array: T): T {
  // WebIDL: an argument that is no ArrayBufferView at all fails conversion (a TypeError, as in
  // workerd); a view of the wrong element type is WebCrypto's TypeMismatchError.
  if (!ArrayBufferIsView(array)) {
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
    const bytes = new Uint8Array(callSync('crypto.randomBytes', array.byteLength));
    TypedArrayPrototypeSet(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), bytes);
  }
  return array;
}

function randomUUID(): string {
  const bytes = getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  let hex = '';
  for (let i = 0; i < bytes.length; i++) hex += StringPrototypePadStart(NumberPrototypeToString(bytes[i]!, 16), 2, '0');
  const h = (start: number, end?: number) => StringPrototypeSlice(hex, start, end);
  return `${h(0, 8)}-${h(8, 12)}-${h(12, 16)}-${h(16, 20)}-${h(20)}`;
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
  get subtle(): SubtleCrypto {
    if (!subtle) {
      constructingSubtle = true;
      try {
        subtle = new SubtleCrypto();
      } finally {
        constructingSubtle = false;
      }
    }
    return subtle;
  }
  /** Cloudflare Workers' crypto.DigestStream. */
  get DigestStream(): Function {
    return digestStreamClass();
  }
  get [SymbolToStringTag]() {
    return 'Crypto';
  }
}

let subtle: SubtleCrypto | undefined;

export function create(deps: CryptoDeps): CryptoApi {
  ({ callSync, callAsync, callAsyncCarrying, DOMException, utf8Encode, WritableStream: writableStream, markNotSerializable, requireRequestContext } = deps);
  // The bundler renames classes; tenants see `.name` (constructor.name, stack traces).
  for (const [C, name] of [[Crypto, 'Crypto'], [SubtleCrypto, 'SubtleCrypto'], [CryptoKey, 'CryptoKey']] as const) {
    ObjectDefineProperty(C, 'name', { __proto__: null, value: name, configurable: true });
  }
  // Platform objects without a serialization: structuredClone refuses them (DataCloneError).
  markNotSerializable(Crypto, SubtleCrypto, CryptoKey);
  return { crypto: new Crypto(), Crypto, SubtleCrypto, CryptoKey };
}
