// The host operations: what the sandbox runtime asks of the host through the `sync` and `async`
// host calls (src/bridge/protocol.ts), by name. Each Web API's Node half (src/api/<name>/host.ts)
// implements its own operations and its sandbox half calls them; both derive the names, how each
// one is called and what it answers from this one table. Arguments are not typed here on
// purpose: they come from code a tenant can reach, and every operation checks each one itself
// for type and size before it acts (see the host halves).

/**
 * The most bytes one operation's call carries. What a call carries out of an isolate is copied
 * onto the host's main thread in one go, and a synchronous operation also runs there, while every
 * tenant of the process waits (a 100 MB crypto.subtle.digest held it for 2 s): larger inputs
 * cross in pieces of this size, the event loop running between them. A synchronous operation's
 * input is sent as a stream of calls (each piece's host CPU is charged to the request as it
 * comes, so the CPU limit ends a long input between pieces) and the host refuses a larger one;
 * an asynchronous operation's is held for the host to take a piece at a time
 * (`callAsyncCarrying`, src/sandbox/outgoing-payloads.ts).
 */
export const MAX_CALL_BYTES = 1024 * 1024;

/** How each operation is called and what it answers. */
export interface Operations {
  /** (length) -> that many random bytes, a buffer of its own. */
  'crypto.randomBytes': Sync<ArrayBuffer>;
  /** (domain) -> its IDNA ASCII form, '' when it has none. */
  'url.domainToASCII': Sync<string>;
  /** (domain) -> its Unicode form, '' when it has none. */
  'url.domainToUnicode': Sync<string>;
  /** () -> the worker's memory limit in MB. */
  'memory.limitMb': Sync<number>;
  /** (label) -> the encoding's canonical name. */
  'encoding.name': Sync<string>;
  /** (encoding, bytes, fatal, ignoreBOM, decoderId, continuing, stream) -> the decoded text. */
  'encoding.decode': Sync<string>;
  /** (keyIds) -> nothing: the sandbox's handles for these keys were garbage collected. */
  'crypto.releaseKeys': Sync<void>;
  /** (algorithm, releasedStreamIds) -> the new digest stream's id. */
  'crypto.digestStream.open': Sync<string>;
  /** (streamId, bytes) */
  'crypto.digestStream.write': Sync<void>;
  /** (streamId) -> the digest. */
  'crypto.digestStream.close': Sync<ArrayBuffer>;
  /** (streamId) */
  'crypto.digestStream.abort': Sync<void>;
  /** (fetchId) -> nothing: the sandbox gave up on this fetch. */
  'fetch.cancel': Sync<void>;

  /**
   * (requestId) -> the request body's next piece (its next chunk joined with those already
   * waiting, up to 1 MiB), a buffer of its own; null at its end.
   */
  'body.read': Async<ArrayBuffer | null>;
  /**
   * (requestId, 'text' | 'bytes') -> all the rest of the request body in one piece, a buffer of
   * its own or its text (UTF-8, a BOM kept); a RangeError past the worker's memory limit.
   */
  'body.readWhole': Async<ArrayBuffer | string>;
  /**
   * (fetchId, method, url, headers, body, redirect, service | null) -> the response head; with
   * `service`, the env name of a service binding, the request goes to that binding's worker.
   */
  'fetch.start': Async<FetchHead>;
  /** (fetchId, chunk | null at the end) -> whether the upstream still takes the body. */
  'fetch.write': Async<boolean>;
  /** (fetchId) -> the response body's next chunk, null at its end. */
  'fetch.read': Async<ArrayBuffer | null>;
  /** (algorithm, data) */
  'crypto.digest': Async<ArrayBuffer>;
  /** (algorithm, extractable, usages) -> KeyInfo | { publicKey, privateKey } */
  'crypto.generateKey': Async<KeyInfo | { publicKey: KeyInfo; privateKey: KeyInfo }>;
  /** (format, keyData, algorithm, extractable, usages) */
  'crypto.importKey': Async<KeyInfo>;
  /** (format, keyId) -> raw/spki/pkcs8 bytes, or a JWK */
  'crypto.exportKey': Async<ArrayBuffer | Record<string, unknown>>;
  /** (algorithm, keyId, data) */
  'crypto.sign': Async<ArrayBuffer>;
  /** (algorithm, keyId, signature, data) */
  'crypto.verify': Async<boolean>;
  /** (algorithm, keyId, data) */
  'crypto.encrypt': Async<ArrayBuffer>;
  /** (algorithm, keyId, data) */
  'crypto.decrypt': Async<ArrayBuffer>;
  /** (algorithm, baseKeyId, length | null) */
  'crypto.deriveBits': Async<ArrayBuffer>;
  /** (algorithm, baseKeyId, derivedKeyAlgorithm, extractable, usages) */
  'crypto.deriveKey': Async<KeyInfo>;
  /** (format, keyId, wrappingKeyId, wrapAlgorithm) */
  'crypto.wrapKey': Async<ArrayBuffer>;
  /** (format, wrappedKey, unwrappingKeyId, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages) */
  'crypto.unwrapKey': Async<KeyInfo>;
  /**
   * (bindingName, method, bytes | true | null, requestBody | null, listed) + the method's
   * arguments as the values it carries (VALUE_OPERATIONS): one by one, or, `listed`, past
   * MAX_VALUES, as one list -> a host binding's result, structured-cloned; a
   * platform binding's answer as PlatformBindingAnswer (its args JSON only). Errors arrive as
   * errors of the name the host gave (see src/api/bindings/).
   */
  'binding.call': Async<unknown>;
  /**
   * (bindingName, method) + the arguments as one list, the one value it carries
   * (VALUE_OPERATIONS) -> RPC through a service binding: the result of the bound entrypoint's
   * method, structured-cloned; its error by name and message.
   */
  'service.call': Async<unknown>;
}

/** What a platform binding's call answers in the isolate: a JSON value, and the binary payload if there is one. */
export interface PlatformBindingAnswer {
  value: unknown;
  bytes: ArrayBuffer | null;
}

interface Sync<R> {
  mode: 'sync';
  result: R;
}
interface Async<R> {
  mode: 'async';
  result: R;
}

export type OperationName = keyof Operations;
export type SyncOperation = { [K in OperationName]: Operations[K]['mode'] extends 'sync' ? K : never }[OperationName];
export type AsyncOperation = { [K in OperationName]: Operations[K]['mode'] extends 'async' ? K : never }[OperationName];
export type OperationResult<K extends OperationName> = Operations[K]['result'];

/** Each operation's mode at run time (the host dispatches on it; the sandbox builds allow-lists from its names). */
export const OPERATION_MODES = {
  'crypto.randomBytes': 'sync',
  'url.domainToASCII': 'sync',
  'url.domainToUnicode': 'sync',
  'memory.limitMb': 'sync',
  'encoding.name': 'sync',
  'encoding.decode': 'sync',
  'crypto.releaseKeys': 'sync',
  'crypto.digestStream.open': 'sync',
  'crypto.digestStream.write': 'sync',
  'crypto.digestStream.close': 'sync',
  'crypto.digestStream.abort': 'sync',
  'fetch.cancel': 'sync',
  'body.read': 'async',
  'body.readWhole': 'async',
  'fetch.start': 'async',
  'fetch.write': 'async',
  'fetch.read': 'async',
  'crypto.digest': 'async',
  'crypto.generateKey': 'async',
  'crypto.importKey': 'async',
  'crypto.exportKey': 'async',
  'crypto.sign': 'async',
  'crypto.verify': 'async',
  'crypto.encrypt': 'async',
  'crypto.decrypt': 'async',
  'crypto.deriveBits': 'async',
  'crypto.deriveKey': 'async',
  'crypto.wrapKey': 'async',
  'crypto.unwrapKey': 'async',
  'binding.call': 'async',
  'service.call': 'async',
} as const satisfies { [K in OperationName]: Operations[K]['mode'] };

/**
 * Operations that carry structured values the host hands on, to another isolate unread (RPC
 * arguments) or to an embedder's function: the sandbox sends them through the `asyncValues`
 * host call (src/bridge/protocol.ts), so that they never cross onto the host's main thread as a
 * copy to be handed on; the host refuses these operations through `async`, and `asyncValues`
 * for any other operation.
 */
export const VALUE_OPERATIONS: readonly AsyncOperation[] = ['binding.call', 'service.call'];

/**
 * The most values one call carries one by one. Each is an argument of the host call, copied in
 * and handed to the host's function as one: a binding method called with 120,000 arguments
 * overflowed the stack on the way and the call was lost. More than this cross as one list.
 */
export const MAX_VALUES = 64;

/** How sandbox code calls operations (its modules get these, limited to their own API's). */
export interface OperationCalls {
  callSync<K extends SyncOperation>(op: K, ...args: unknown[]): OperationResult<K>;
  callAsync<K extends AsyncOperation>(op: K, ...args: unknown[]): Promise<OperationResult<K>>;
  /**
   * callAsync, carrying `bytes` (when given) for the host to take a piece at a time at the
   * platform's cost (the `takePayload` entry, OpContext.takePayload) rather than in an argument:
   * for inputs over MAX_CALL_BYTES.
   */
  callAsyncCarrying<K extends AsyncOperation>(bytes: Uint8Array | undefined, op: K, ...args: unknown[]): Promise<OperationResult<K>>;
}

/** What the host answers fetch.start with. */
export interface FetchHead {
  status: number;
  /** Byte string, as Node read it. */
  statusText: string;
  /** Flat [name, value, ...], byte strings, in wire order. */
  headers: string[];
  /** The final URL (after redirects). */
  url: string;
  redirected: boolean;
  /** Whether there is a body to read with fetch.read (not for HEAD, 204, 205, 304). */
  hasBody: boolean;
}

/** A CryptoKey as the host describes it to the sandbox: the key itself stays on the host, by id. */
export interface KeyInfo {
  id: string;
  type: 'secret' | 'public' | 'private';
  extractable: boolean;
  algorithm: Record<string, unknown>;
  usages: string[];
}
