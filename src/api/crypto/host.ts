// The host half of crypto.subtle: every operation runs in Node's native WebCrypto (OpenSSL),
// never in the isolate. The sandbox half (sandbox.ts) normalizes a call's arguments into plain
// copies (algorithm dictionaries of strings, numbers and ArrayBuffers; key ids in place of
// CryptoKeys) and hands them to the operations below through callAsync('crypto.<op>', ...).
//
// Keys: the real Node CryptoKey lives here, in the calling isolate's op scope
// (ctx.scope.get('crypto').keys, id -> CryptoKey). The sandbox holds only an opaque handle whose
// id is in a private field. Ids are random, and they are looked up in the caller's own scope
// only, so an id from another isolate, or a guessed one, names nothing; Node's own checks of
// `extractable` and usages still hold even for a caller that took over the sandbox runtime,
// because the Node key carries them.
//
// Arguments come from code a tenant can reach: each one is checked for type and size here,
// before Node sees it, and every error that leaves is one of the WebCrypto error names with a
// message that says nothing about the host.
//
// Crossing cost: each call copies its data into the host and its result back out (two
// structured-clone copies, plus one for the sandbox's defensive copy of the caller's buffer).
// For digest/HMAC of large inputs that is linear in the input and fine next to the hashing
// itself; there is no streaming path (DigestStream would be one).

import { createHash, randomBytes, webcrypto, type Hash, type KeyObject } from 'node:crypto';
import type { AsyncOp, OpContext, OperationTable, SyncOp } from '../../runtime/host-ops.ts';
import { MAX_CALL_BYTES, type KeyInfo } from '../../bridge/operations.ts';
import { runOnCryptoPool, type PoolJob, type SubtleMethod } from './pool.ts';
import { reserveCarried, takeCarried } from '../../runtime/carried-bytes.ts';

type NodeKey = webcrypto.CryptoKey;
const subtle = webcrypto.subtle;

const MB = 1024 * 1024;
/** Largest BufferSource an operation accepts: an isolate's whole memory budget. */
export const MAX_DATA_BYTES = 128 * MB;
/** Keys one isolate may hold at once (a key pair counts twice). */
export const MAX_KEYS_PER_ISOLATE = 10_000;
/** Host crypto jobs of one isolate running at once; the rest wait their turn (fairness between tenants). */
const MAX_RUNNING_PER_ISOLATE = 2;
/** As in Cloudflare Workers (workerd's checkPbkdfLimits): PBKDF2 is a CPU-time lever otherwise. */
const MAX_PBKDF2_ITERATIONS = 100_000;
/** PBKDF2 output cost multiplies with iterations; longer outputs are refused (isolet's limit). */
const MAX_PBKDF2_BITS = 4096;
/**
 * RSA key generation time grows with the fourth power of the modulus (measured: 2048 bits
 * 20-50 ms, 4096 bits 0.35-1.8 s of CPU); 16384-bit keys take minutes. Generation runs on the
 * crypto threads and is charged to the request, so an 8192-bit key usually ends a request
 * over its CPU limit.
 */
const MAX_RSA_MODULUS_BITS = 8192;
/**
 * Inputs this large or larger go to the crypto threads: a digest's (SHA-256: ~5 ms per MB), and
 * an encrypt's, decrypt's, sign's or verify's, whose input Node copies on the calling thread.
 */
const POOL_INPUT_BYTES = 256 * 1024;
const RSA_GENERATE_USAGES: Record<string, { public: string[]; private: string[] }> = {
  'RSASSA-PKCS1-v1_5': { public: ['verify'], private: ['sign'] },
  'RSA-PSS': { public: ['verify'], private: ['sign'] },
  'RSA-OAEP': { public: ['encrypt', 'wrapKey'], private: ['decrypt', 'unwrapKey'] },
};
const NODE_HASH: Record<string, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512', MD5: 'md5' };
/** Largest deriveBits length in bits (HKDF's own maximum is 255 * 512). */
const MAX_DERIVE_BITS = 255 * 512;
const MAX_STRING = 256;
const MAX_JWK_STRING = 64 * 1024;
/** crypto.DigestStream hashes one isolate may have open at once. */
export const MAX_DIGEST_STREAMS_PER_ISOLATE = 1000;
/** MD5 runs on this thread (Node's webcrypto has no MD5), so hash in slices and yield between them. */
const MD5_SLICE = 4 * MB;

/** Algorithm names crypto.subtle recognizes here (WebCrypto's registry as workerd implements it). */
const ALGORITHM_NAMES = [
  'SHA-1', 'SHA-256', 'SHA-384', 'SHA-512', 'MD5',
  'HMAC', 'AES-GCM', 'AES-CBC', 'AES-CTR', 'AES-KW', 'PBKDF2', 'HKDF',
  'ECDSA', 'ECDH', 'Ed25519', 'X25519', 'RSASSA-PKCS1-v1_5', 'RSA-PSS', 'RSA-OAEP',
];
const HASH_NAMES = ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'];
const DIGEST_NAMES = [...HASH_NAMES, 'MD5'];
const BY_UPPER_NAME = new Map(ALGORITHM_NAMES.map((name) => [name.toUpperCase(), name]));

const NUMBER_MEMBERS = ['length', 'modulusLength', 'tagLength', 'saltLength', 'iterations'];
const BYTES_MEMBERS = ['iv', 'counter', 'additionalData', 'label', 'salt', 'info', 'publicExponent'];
const JWK_STRING_MEMBERS = ['kty', 'use', 'alg', 'crv', 'x', 'y', 'd', 'n', 'e', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Error names that may reach the sandbox as they are; anything else becomes an OperationError. */
const PASSED_ERROR_NAMES = new Set([
  'TypeError', 'RangeError', 'NotSupportedError', 'InvalidAccessError', 'DataError', 'OperationError',
  'SyntaxError', 'QuotaExceededError', 'InvalidStateError', 'NotAllowedError',
]);

interface CryptoScope {
  keys: Map<string, NodeKey>;
  /** crypto.DigestStream's running hashes, by stream id. */
  hashes: Map<string, Hash>;
  running: number;
  waiting: Array<() => void>;
}

function cryptoScope(ctx: OpContext): CryptoScope {
  let scope = ctx.scope.get('crypto') as CryptoScope | undefined;
  if (!scope) {
    scope = { keys: new Map(), hashes: new Map(), running: 0, waiting: [] };
    ctx.scope.set('crypto', scope);
  }
  return scope;
}

/** An error the bridge rebuilds in the sandbox by name (a DOMException, or TypeError/RangeError). */
function opError(name: string, message: string): Error {
  // Native classes for native names: a synchronous op's error crosses by its class, not its name.
  if (name === 'TypeError') return new TypeError(message);
  if (name === 'RangeError') return new RangeError(message);
  const error = new Error(message);
  error.name = name;
  return error;
}

function fail(name: string, message: string): never {
  throw opError(name, message);
}

/** Node's errors, reduced to a WebCrypto error name and a message about the caller's input. */
function cleanError(error: unknown): Error {
  if (error instanceof Error && PASSED_ERROR_NAMES.has(error.name)) {
    return opError(error.name, String(error.message).slice(0, 1000));
  }
  return opError('OperationError', 'The operation failed for an operation-specific reason');
}

// ---------------------------------------------------------------------------------------------
// Argument checks. The sandbox half already normalized; these hold against anything else.

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof ArrayBuffer);
}

function string(value: unknown, what: string, max = MAX_STRING): string {
  if (typeof value !== 'string') fail('TypeError', `${what} must be a string.`);
  if (value.length > max) fail('TypeError', `${what} is too long.`);
  return value;
}

function boolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') fail('TypeError', `${what} must be a boolean.`);
  return value;
}

function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof ArrayBuffer)) fail('TypeError', `${what} must be an ArrayBuffer or ArrayBufferView.`);
  if (value.byteLength > MAX_DATA_BYTES) fail('RangeError', `${what} is larger than ${MAX_DATA_BYTES / MB} MB.`);
  return new Uint8Array(value);
}

/**
 * An operation's `data`: an ArrayBuffer argument, or, past one call's bound (MAX_CALL_BYTES), the
 * length of the bytes the call carries (src/runtime/carried-bytes.ts).
 */
function withData<R>(ctx: OpContext, data: unknown, use: (input: Uint8Array) => Promise<R>): Promise<R> {
  if (typeof data !== 'number') {
    // The contract, held even though the copy was made by then: a regression fails rather than stalls the process.
    if (data instanceof ArrayBuffer && data.byteLength > MAX_CALL_BYTES) fail('RangeError', `data of more than ${MAX_CALL_BYTES} bytes crosses as the call's payload.`);
    return use(bytes(data, 'data'));
  }
  if (!Number.isSafeInteger(data) || data <= MAX_CALL_BYTES) fail('TypeError', 'data must be an ArrayBuffer or ArrayBufferView.');
  if (data > MAX_DATA_BYTES) fail('RangeError', `data is larger than ${MAX_DATA_BYTES / MB} MB.`);
  const release = reserveCarried(ctx, data, () => opError('QuotaExceededError', `This worker's crypto.subtle calls waiting to run already hold ${ctx.limits.memoryMb} MB of data, its memory limit: await some before starting more.`));
  return takeCarried(ctx, data, () => opError('TypeError', 'data did not reach the host whole; it is copied when the method is called, so this is the platform\'s fault: report it.'))
    .then(use)
    .finally(release);
}

/**
 * Node's WebCrypto `method` on `input`: on the crypto threads from POOL_INPUT_BYTES (Node copies
 * the input on the thread that calls it; `input` is the sandbox's copy, made for this call, so it
 * moves there), here below that.
 */
function subtleCall<M extends SubtleMethod>(ctx: OpContext, method: M, alg: Algorithm, key: NodeKey, input: Uint8Array, signature?: Uint8Array): Promise<M extends 'verify' ? boolean : ArrayBuffer>;
function subtleCall(ctx: OpContext, method: SubtleMethod, alg: Algorithm, key: NodeKey, input: Uint8Array, signature?: Uint8Array): Promise<ArrayBuffer | boolean> {
  const algorithm = alg as unknown as webcrypto.AlgorithmIdentifier;
  if (input.byteLength >= POOL_INPUT_BYTES) {
    const data = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength ? input.buffer as ArrayBuffer : input.slice().buffer;
    const sig = signature === undefined ? undefined : signature.slice().buffer;
    return runOnCryptoPool<ArrayBuffer | boolean>(ctx, { kind: 'subtle', method, algorithm, key, data, signature: sig }, [data]);
  }
  if (method === 'verify') return subtle.verify(algorithm, key, signature!, input);
  return subtle[method](algorithm, key, input);
}

function strings(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length > 16) fail('TypeError', `${what} must be a sequence of strings.`);
  return value.map((item) => string(item, `Each of ${what}`, 32));
}

const KEY_USAGES = ['encrypt', 'decrypt', 'sign', 'verify', 'deriveKey', 'deriveBits', 'wrapKey', 'unwrapKey'];

/**
 * A key's usages. An unknown usage is a SyntaxError as in workerd (CryptoKeyUsageSet::validate),
 * where WebIDL's KeyUsage enum would make it a TypeError.
 */
function usages(value: unknown, action: 'generate' | 'import', algorithm: Algorithm): string[] {
  const list = strings(value, 'keyUsages');
  for (const usage of list) {
    if (!KEY_USAGES.includes(usage)) {
      fail('SyntaxError', `Attempt to ${action} ${algorithm.name} key with invalid usage ${JSON.stringify(usage)}.`);
    }
  }
  return list;
}

function keyOf(scope: CryptoScope, id: unknown, what: string): NodeKey {
  const key = typeof id === 'string' ? scope.keys.get(id) : undefined;
  // An id this isolate never made (another isolate's, a released or a guessed one).
  if (!key) fail('InvalidAccessError', `${what} is not a CryptoKey of this worker.`);
  return key;
}

function canonicalName(name: string, allowed: readonly string[], what: string): string {
  const canonical = BY_UPPER_NAME.get(name.toUpperCase());
  if (canonical === undefined || !allowed.includes(canonical)) {
    fail('NotSupportedError', `Unrecognized or unimplemented ${what} requested: ${JSON.stringify(name.slice(0, 64))}.`);
  }
  return canonical;
}

function hashArg(value: unknown): { name: string } {
  const name = typeof value === 'string' ? value : isRecord(value) ? value.name : undefined;
  return { name: canonicalName(string(name, 'algorithm.hash.name', 64), HASH_NAMES, 'digest algorithm') };
}

type Algorithm = Record<string, unknown> & { name: string };

/**
 * A clean algorithm dictionary for Node from what the sandbox sent: known members only, each of
 * its WebIDL type (WebCrypto §18.4 "normalize an algorithm" is then done again by Node).
 */
function algorithmArg(value: unknown, scope: CryptoScope, allowed: readonly string[] = ALGORITHM_NAMES): Algorithm {
  const dict = typeof value === 'string' ? { name: value } : value;
  if (!isRecord(dict)) fail('TypeError', 'An algorithm must be a string or an object with a name.');
  const name = canonicalName(string(dict.name, 'algorithm.name', 64), allowed, 'algorithm');
  const out: Algorithm = { name };
  if (dict.hash !== undefined) out.hash = hashArg(dict.hash);
  for (const member of NUMBER_MEMBERS) {
    const v = dict[member];
    if (v === undefined) continue;
    if (typeof v !== 'number') fail('TypeError', `algorithm.${member} must be a number.`);
    out[member] = v;
  }
  for (const member of BYTES_MEMBERS) {
    if (dict[member] !== undefined) out[member] = bytes(dict[member], `algorithm.${member}`);
  }
  if (dict.namedCurve !== undefined) out.namedCurve = string(dict.namedCurve, 'algorithm.namedCurve', 64);
  if (dict.public !== undefined) out.public = keyOf(scope, dict.public, 'algorithm.public');
  return out;
}

/** isolet's resource limits, checked before Node spends time on the request. */
function checkCost(algorithm: Algorithm, derivedBits?: unknown): void {
  if (algorithm.name === 'PBKDF2') {
    const iterations = algorithm.iterations;
    if (typeof iterations === 'number' && iterations > MAX_PBKDF2_ITERATIONS) {
      fail('NotSupportedError', `Pbkdf2 failed: iteration counts above ${MAX_PBKDF2_ITERATIONS} are not supported (requested ${iterations}).`);
    }
    if (typeof derivedBits === 'number' && derivedBits > MAX_PBKDF2_BITS) {
      fail('NotSupportedError', `PBKDF2 can derive at most ${MAX_PBKDF2_BITS} bits here (requested ${derivedBits}).`);
    }
  }
  const modulus = algorithm.modulusLength;
  if (typeof modulus === 'number' && modulus > MAX_RSA_MODULUS_BITS) {
    fail('OperationError', `The modulus length must be at most ${MAX_RSA_MODULUS_BITS} bits (requested ${modulus}).`);
  }
  const exponent = algorithm.publicExponent;
  if (exponent instanceof Uint8Array) {
    // workerd allows only 3 and 65537; other exponents are slow to use or weak.
    const value = exponent.reduce((acc, byte) => acc * 256 + byte, 0);
    if (value !== 3 && value !== 65537) {
      fail('OperationError', 'The "publicExponent" must be either 3 or 65537.');
    }
  }
}

function lengthArg(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail('TypeError', 'length must be a non-negative integer or null.');
  if (value > MAX_DERIVE_BITS) fail('OperationError', `length must be at most ${MAX_DERIVE_BITS} bits.`);
  return value;
}

/** A key format; workerd takes it as a string and refuses others as NotSupportedError. */
function formatArg(value: unknown, action: 'import' | 'export'): 'raw' | 'pkcs8' | 'spki' | 'jwk' {
  if (value === 'raw' || value === 'pkcs8' || value === 'spki' || value === 'jwk') return value;
  fail('NotSupportedError', `Unrecognized key ${action} format ${JSON.stringify(String(value).slice(0, 32))}.`);
}

/** A JSON Web Key of known members only (RFC 7517/7518), strings of bounded length. */
function jwkArg(value: unknown): webcrypto.JsonWebKey {
  if (!isRecord(value)) fail('TypeError', 'A key in "jwk" format must be an object.');
  const out: Record<string, unknown> = {};
  for (const member of JWK_STRING_MEMBERS) {
    if (value[member] !== undefined) out[member] = string(value[member], `jwk.${member}`, MAX_JWK_STRING);
  }
  if (value.ext !== undefined) out.ext = boolean(value.ext, 'jwk.ext');
  if (value.key_ops !== undefined) out.key_ops = strings(value.key_ops, 'jwk.key_ops');
  if (value.oth !== undefined) {
    if (!Array.isArray(value.oth) || value.oth.length > 16) fail('TypeError', 'jwk.oth must be an array.');
    out.oth = value.oth.map((prime) => {
      if (!isRecord(prime)) fail('TypeError', 'jwk.oth entries must be objects.');
      return {
        r: string(prime.r, 'jwk.oth.r', MAX_JWK_STRING),
        d: string(prime.d, 'jwk.oth.d', MAX_JWK_STRING),
        t: string(prime.t, 'jwk.oth.t', MAX_JWK_STRING),
      };
    });
  }
  return out as webcrypto.JsonWebKey;
}

function keyDataArg(format: string, value: unknown): Uint8Array | webcrypto.JsonWebKey {
  return format === 'jwk' ? jwkArg(value) : bytes(value, 'keyData');
}

// ---------------------------------------------------------------------------------------------
// Keys in the isolate's scope.

function roomFor(scope: CryptoScope, count: number): void {
  if (scope.keys.size + count > MAX_KEYS_PER_ISOLATE) {
    fail(
      'QuotaExceededError',
      `This worker holds ${scope.keys.size} CryptoKeys, the most one isolate may hold is ${MAX_KEYS_PER_ISOLATE}. ` +
        'Keys are freed once nothing in the worker refers to them any more.',
    );
  }
}

/** The algorithm a CryptoKey shows (WebCrypto §14 KeyAlgorithm dictionaries), as plain copies. */
function keyAlgorithm(algorithm: webcrypto.KeyAlgorithm): Record<string, unknown> {
  const source = algorithm as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { name: algorithm.name };
  for (const member of ['length', 'namedCurve', 'modulusLength']) {
    if (source[member] !== undefined) out[member] = source[member];
  }
  const hash = source.hash as { name?: unknown } | undefined;
  if (hash && typeof hash.name === 'string') out.hash = { name: hash.name };
  const exponent = source.publicExponent;
  if (exponent instanceof Uint8Array) out.publicExponent = exponent.slice().buffer;
  return out;
}

function register(scope: CryptoScope, key: NodeKey): KeyInfo {
  roomFor(scope, 1);
  const id = randomBytes(16).toString('base64url');
  scope.keys.set(id, key);
  return {
    id,
    type: key.type,
    extractable: key.extractable,
    algorithm: keyAlgorithm(key.algorithm),
    usages: [...key.usages],
  };
}

// ---------------------------------------------------------------------------------------------
// Running: arguments are checked and keys looked up synchronously, when the call arrives (so a
// key released later cannot change what a call already in flight uses); the Node work then
// waits for one of the isolate's job slots.

function run<T>(ctx: OpContext, job: () => Promise<T>): Promise<T> {
  const scope = cryptoScope(ctx);
  const signal = ctx.request?.signal;
  return new Promise<T>((resolve, reject) => {
    const start = () => {
      if (signal?.aborted) {
        next();
        return reject(opError('OperationError', 'The request this operation belonged to has ended.'));
      }
      scope.running++;
      let promise: Promise<T>;
      try {
        promise = job();
      } catch (error) {
        promise = Promise.reject(error);
      }
      promise.then(resolve, (error: unknown) => reject(cleanError(error))).finally(() => {
        scope.running--;
        next();
      });
    };
    const next = () => {
      const waiting = scope.waiting.shift();
      if (waiting) waiting();
    };
    if (scope.running < MAX_RUNNING_PER_ISOLATE) start();
    else scope.waiting.push(start);
  });
}

/** Wraps an operation so argument errors, too, arrive as clean rejections. */
function op<R>(body: (ctx: OpContext, args: unknown[], scope: CryptoScope) => Promise<R>): AsyncOp<R> {
  return (ctx, args) => {
    try {
      return body(ctx, args, cryptoScope(ctx));
    } catch (error) {
      return Promise.reject(cleanError(error));
    }
  };
}

async function md5(data: Uint8Array): Promise<ArrayBuffer> {
  const hash = createHash('md5');
  for (let offset = 0; offset < data.byteLength; offset += MD5_SLICE) {
    if (offset > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(data.subarray(offset, offset + MD5_SLICE));
  }
  if (data.byteLength === 0) hash.update(data);
  const digest = hash.digest();
  return digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength) as ArrayBuffer;
}

/**
 * RSA key generation for the crypto threads, when the call is well formed; anything else goes to
 * Node's WebCrypto, which refuses it before doing any work (and says why in its own words).
 */
function rsaOnPool(alg: Algorithm, use: string[]): { job: PoolJob; publicUsages: string[]; privateUsages: string[] } | undefined {
  const allowed = RSA_GENERATE_USAGES[alg.name];
  const modulusLength = alg.modulusLength;
  const exponent = alg.publicExponent;
  if (!allowed || alg.hash === undefined || !(exponent instanceof Uint8Array)) return undefined;
  if (typeof modulusLength !== 'number' || !Number.isInteger(modulusLength) || modulusLength < 1024) return undefined;
  if (use.some((usage) => !allowed.public.includes(usage) && !allowed.private.includes(usage))) return undefined;
  const privateUsages = use.filter((usage) => allowed.private.includes(usage));
  if (privateUsages.length === 0) return undefined;
  return {
    job: { kind: 'rsa', modulusLength, publicExponent: exponent.reduce((acc, byte) => acc * 256 + byte, 0) },
    publicUsages: use.filter((usage) => allowed.public.includes(usage)),
    privateUsages,
  };
}

/** PBKDF2 deriveBits for the crypto threads, when well formed (else as rsaOnPool). */
function pbkdf2OnPool(alg: Algorithm, key: NodeKey, bits: number | null): Extract<PoolJob, { kind: 'pbkdf2' }> | undefined {
  if (alg.name !== 'PBKDF2' || bits === null || bits === 0 || bits % 8 !== 0) return undefined;
  const iterations = alg.iterations;
  const salt = alg.salt;
  const hash = alg.hash as { name: string } | undefined;
  if (typeof iterations !== 'number' || !Number.isInteger(iterations) || iterations < 1 || !(salt instanceof Uint8Array) || !hash) return undefined;
  if (key.algorithm.name !== 'PBKDF2' || !key.usages.includes('deriveBits')) return undefined;
  const password = pbkdf2Passwords.get(key);
  if (!password) return undefined;
  return {
    kind: 'pbkdf2',
    password: password.buffer.slice(password.byteOffset, password.byteOffset + password.byteLength) as ArrayBuffer,
    salt: salt.slice().buffer,
    iterations,
    bytes: bits / 8,
    hash: NODE_HASH[hash.name]!,
  };
}

/** The password of each PBKDF2 key imported here (held as long as the key is). */
const pbkdf2Passwords = new WeakMap<NodeKey, Uint8Array>();

function keyOrPair(scope: CryptoScope, result: NodeKey | webcrypto.CryptoKeyPair): KeyInfo | { publicKey: KeyInfo; privateKey: KeyInfo } {
  if ('publicKey' in result) {
    roomFor(scope, 2);
    return { publicKey: register(scope, result.publicKey), privateKey: register(scope, result.privateKey) };
  }
  return register(scope, result);
}

function exported(result: ArrayBuffer | webcrypto.JsonWebKey): ArrayBuffer | Record<string, unknown> {
  if (result instanceof ArrayBuffer) return result;
  return { ...result };
}

/**
 * The operations, by the name the sandbox calls them with. Argument shapes (all copies):
 *
 *   crypto.digest      (algorithm, data)
 *   crypto.generateKey (algorithm, extractable, usages)                          -> KeyInfo | { publicKey, privateKey }
 *   crypto.importKey   (format, keyData, algorithm, extractable, usages)         -> KeyInfo
 *   crypto.exportKey   (format, keyId)                                           -> ArrayBuffer | JWK
 *   crypto.sign        (algorithm, keyId, data)                                  -> ArrayBuffer
 *   crypto.verify      (algorithm, keyId, signature, data)                       -> boolean
 *   crypto.encrypt     (algorithm, keyId, data)                                  -> ArrayBuffer
 *   crypto.decrypt     (algorithm, keyId, data)                                  -> ArrayBuffer
 *   crypto.deriveBits  (algorithm, baseKeyId, length | null)                     -> ArrayBuffer
 *   crypto.deriveKey   (algorithm, baseKeyId, derivedKeyAlgorithm, extractable, usages) -> KeyInfo
 *   crypto.wrapKey     (format, keyId, wrappingKeyId, wrapAlgorithm)             -> ArrayBuffer
 *   crypto.unwrapKey   (format, wrappedKey, unwrappingKeyId, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages) -> KeyInfo
 *
 * where an algorithm is { name, hash?: { name }, length?, ..., iv?: ArrayBuffer, ..., public?: keyId }
 * and data, signatures and raw/spki/pkcs8 key data are ArrayBuffers.
 */
export const cryptoAsyncOps = {
  'crypto.digest': op((ctx, [algorithm, data], scope) => {
    const { name } = algorithmArg(algorithm, scope, DIGEST_NAMES);
    return withData(ctx, data, (input) => {
      if (input.byteLength >= POOL_INPUT_BYTES) {
        // The sandbox's copy, made for this call alone: it moves to the thread.
        const buffer = input.buffer as ArrayBuffer;
        return run(ctx, () => runOnCryptoPool<ArrayBuffer>(ctx, { kind: 'digest', data: buffer, hash: NODE_HASH[name]! }, [buffer]));
      }
      if (name === 'MD5') return run(ctx, () => md5(input));
      return run(ctx, () => subtle.digest(name, input));
    });
  }),

  'crypto.generateKey': op((ctx, [algorithm, extractable, keyUsages], scope) => {
    const alg = algorithmArg(algorithm, scope);
    const ext = boolean(extractable, 'extractable');
    const use = usages(keyUsages, 'generate', alg);
    checkCost(alg);
    roomFor(scope, 2);
    const pooled = rsaOnPool(alg, use);
    if (pooled) {
      return run(ctx, async () => {
        const pair = await runOnCryptoPool<{ publicKey: KeyObject; privateKey: KeyObject }>(ctx, pooled.job);
        const algorithm = { name: alg.name, hash: alg.hash as { name: string } };
        return keyOrPair(scope, {
          publicKey: pair.publicKey.toCryptoKey(algorithm, true, pooled.publicUsages as webcrypto.KeyUsage[]),
          privateKey: pair.privateKey.toCryptoKey(algorithm, ext, pooled.privateUsages as webcrypto.KeyUsage[]),
        });
      });
    }
    return run(ctx, async () => {
      const result = await subtle.generateKey(alg as unknown as webcrypto.AlgorithmIdentifier, ext, use as webcrypto.KeyUsage[]);
      return keyOrPair(scope, result as NodeKey | webcrypto.CryptoKeyPair);
    });
  }),

  'crypto.importKey': op((ctx, [format, keyData, algorithm, extractable, keyUsages], scope) => {
    const fmt = formatArg(format, 'import');
    const data = keyDataArg(fmt, keyData);
    const alg = algorithmArg(algorithm, scope);
    const ext = boolean(extractable, 'extractable');
    const use = usages(keyUsages, 'import', alg);
    roomFor(scope, 1);
    return run(ctx, async () => {
      // Node's overloads split jwk from the binary formats; the call is the same.
      const key = await (subtle.importKey as (...args: unknown[]) => Promise<NodeKey>).call(subtle, fmt, data, alg, ext, use);
      // PBKDF2 keys are never extractable; the crypto threads need the password itself.
      if (alg.name === 'PBKDF2' && data instanceof Uint8Array) pbkdf2Passwords.set(key, data.slice());
      return register(scope, key);
    });
  }),

  'crypto.exportKey': op((ctx, [format, keyId], scope) => {
    const fmt = formatArg(format, 'export');
    const key = keyOf(scope, keyId, 'key');
    // Node's overloads split jwk from the binary formats; the call is the same.
    const exportKey = subtle.exportKey.bind(subtle) as (format: string, key: NodeKey) => Promise<ArrayBuffer | webcrypto.JsonWebKey>;
    return run(ctx, async () => exported(await exportKey(fmt, key)));
  }),

  'crypto.sign': op((ctx, [algorithm, keyId, data], scope) => {
    const alg = algorithmArg(algorithm, scope);
    const key = keyOf(scope, keyId, 'key');
    return withData(ctx, data, (input) => run(ctx, () => subtleCall(ctx, 'sign', alg, key, input)));
  }),

  'crypto.verify': op((ctx, [algorithm, keyId, signature, data], scope) => {
    const alg = algorithmArg(algorithm, scope);
    const key = keyOf(scope, keyId, 'key');
    // Past one call's bound only its length crosses: no algorithm's signature is that long.
    if (typeof signature === 'number' && Number.isSafeInteger(signature) && signature > MAX_CALL_BYTES) {
      return run(ctx, async () => false);
    }
    const sig = bytes(signature, 'signature');
    return withData(ctx, data, (input) => run(ctx, () => subtleCall(ctx, 'verify', alg, key, input, sig)));
  }),

  'crypto.encrypt': op((ctx, [algorithm, keyId, data], scope) => {
    const alg = algorithmArg(algorithm, scope);
    const key = keyOf(scope, keyId, 'key');
    return withData(ctx, data, (input) => run(ctx, () => subtleCall(ctx, 'encrypt', alg, key, input)));
  }),

  'crypto.decrypt': op((ctx, [algorithm, keyId, data], scope) => {
    const alg = algorithmArg(algorithm, scope);
    const key = keyOf(scope, keyId, 'key');
    return withData(ctx, data, (input) => run(ctx, () => subtleCall(ctx, 'decrypt', alg, key, input)));
  }),

  'crypto.deriveBits': op((ctx, [algorithm, keyId, length], scope) => {
    const alg = algorithmArg(algorithm, scope);
    const key = keyOf(scope, keyId, 'baseKey');
    const bits = lengthArg(length);
    checkCost(alg, bits);
    const pooled = pbkdf2OnPool(alg, key, bits);
    if (pooled) return run(ctx, () => runOnCryptoPool<ArrayBuffer>(ctx, pooled, [pooled.password]));
    return run(ctx, () => subtle.deriveBits(alg as unknown as webcrypto.EcdhKeyDeriveParams, key, bits));
  }),

  'crypto.deriveKey': op((ctx, [algorithm, keyId, derivedKeyAlgorithm, extractable, keyUsages], scope) => {
    const alg = algorithmArg(algorithm, scope);
    const key = keyOf(scope, keyId, 'baseKey');
    const derived = algorithmArg(derivedKeyAlgorithm, scope);
    const ext = boolean(extractable, 'extractable');
    const use = usages(keyUsages, 'import', derived);
    checkCost(alg, typeof derived.length === 'number' ? derived.length : undefined);
    roomFor(scope, 1);
    return run(ctx, async () => {
      const result = await subtle.deriveKey(
        alg as unknown as webcrypto.EcdhKeyDeriveParams, key,
        derived as unknown as webcrypto.AesDerivedKeyParams, ext, use as webcrypto.KeyUsage[],
      );
      return register(scope, result);
    });
  }),

  'crypto.wrapKey': op((ctx, [format, keyId, wrappingKeyId, wrapAlgorithm], scope) => {
    const fmt = formatArg(format, 'export');
    const key = keyOf(scope, keyId, 'key');
    const wrappingKey = keyOf(scope, wrappingKeyId, 'wrappingKey');
    const alg = algorithmArg(wrapAlgorithm, scope);
    return run(ctx, () => subtle.wrapKey(fmt, key, wrappingKey, alg as unknown as webcrypto.AlgorithmIdentifier));
  }),

  'crypto.unwrapKey': op((ctx, [format, wrappedKey, unwrappingKeyId, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, keyUsages], scope) => {
    const fmt = formatArg(format, 'import');
    const wrapped = bytes(wrappedKey, 'wrappedKey');
    const unwrappingKey = keyOf(scope, unwrappingKeyId, 'unwrappingKey');
    const unwrapAlg = algorithmArg(unwrapAlgorithm, scope);
    const keyAlg = algorithmArg(unwrappedKeyAlgorithm, scope);
    const ext = boolean(extractable, 'extractable');
    const use = usages(keyUsages, 'import', keyAlg);
    roomFor(scope, 1);
    return run(ctx, async () => {
      const key = await subtle.unwrapKey(
        fmt, wrapped, unwrappingKey, unwrapAlg as unknown as webcrypto.AlgorithmIdentifier,
        keyAlg as unknown as webcrypto.AlgorithmIdentifier, ext, use as webcrypto.KeyUsage[],
      );
      return register(scope, key);
    });
  }),
} satisfies Partial<OperationTable>;

const NODE_DIGEST_NAMES: Record<string, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512', MD5: 'md5' };

function hashOf(scope: CryptoScope, id: unknown): Hash {
  const hash = typeof id === 'string' ? scope.hashes.get(id) : undefined;
  if (!hash) fail('InvalidStateError', 'The DigestStream is closed.');
  return hash;
}

function forget(map: Map<string, unknown>, ids: unknown, max: number): void {
  if (!Array.isArray(ids) || ids.length > max) return;
  for (const id of ids) if (typeof id === 'string') map.delete(id);
}

/**
 * Synchronous operations (callSync). crypto.DigestStream's are synchronous so that a stream's
 * write needs no promise per chunk; each write hashes its chunk on this thread (Node's
 * incremental hashes have no thread-pool form), about 2 ms per MB, while the isolate waits.
 *
 *   crypto.releaseKeys          (keyIds: string[])
 *   crypto.digestStream.open    (algorithmName, releasedStreamIds: string[]) -> streamId
 *   crypto.digestStream.write   (streamId, chunk: ArrayBuffer)
 *   crypto.digestStream.close   (streamId) -> ArrayBuffer
 *   crypto.digestStream.abort   (streamId)
 */
export const cryptoSyncOps = {
  /**
   * crypto.releaseKeys(keyIds): the sandbox's CryptoKey handles for these ids were garbage
   * collected (a FinalizationRegistry there reports them), so the host lets the keys go.
   */
  'crypto.releaseKeys': (ctx, [keyIds]) => {
    forget(cryptoScope(ctx).keys, keyIds, MAX_KEYS_PER_ISOLATE);
  },
  'crypto.digestStream.open': (ctx, [algorithm, released]) => {
    const scope = cryptoScope(ctx);
    // Streams whose DigestStream was garbage collected before it was closed.
    forget(scope.hashes, released, MAX_DIGEST_STREAMS_PER_ISOLATE);
    const name = canonicalName(string(algorithm, 'algorithm', 64), DIGEST_NAMES, 'digest algorithm');
    if (scope.hashes.size >= MAX_DIGEST_STREAMS_PER_ISOLATE) {
      fail('RangeError', `A worker may have at most ${MAX_DIGEST_STREAMS_PER_ISOLATE} DigestStreams open at once; close or abort the ones it is done with.`);
    }
    const id = randomBytes(16).toString('base64url');
    scope.hashes.set(id, createHash(NODE_DIGEST_NAMES[name]!));
    return id;
  },
  'crypto.digestStream.write': (ctx, [id, chunk]) => {
    const scope = cryptoScope(ctx);
    const hash = hashOf(scope, id);
    // Hashed on the main thread: the sandbox sends a large chunk in pieces.
    if (chunk instanceof ArrayBuffer && chunk.byteLength > MAX_CALL_BYTES) fail('RangeError', `A DigestStream piece is at most ${MAX_CALL_BYTES} bytes.`);
    hash.update(bytes(chunk, 'chunk'));
  },
  'crypto.digestStream.close': (ctx, [id]) => {
    const scope = cryptoScope(ctx);
    const hash = hashOf(scope, id);
    scope.hashes.delete(id as string);
    const digest = hash.digest();
    return digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength);
  },
  'crypto.digestStream.abort': (ctx, [id]) => {
    if (typeof id === 'string') cryptoScope(ctx).hashes.delete(id);
  },
} satisfies Partial<OperationTable>;
