// KVNamespace, the object a worker's `kv_namespaces` binding is in `env`: get (text, json,
// arrayBuffer, stream; cacheTtl; an array of up to 100 keys gives a Map), getWithMetadata, put (string, ArrayBuffer, view or
// ReadableStream; expiration, expirationTtl, metadata), delete and list (prefix, limit, cursor),
// as workerd's KvNamespace. A sandbox module (src/runtime/sandbox-modules.ts), loaded by the
// first worker of an isolate that has a KV binding.
//
// This side turns the API's values into JSON arguments and one binary payload and back; the host
// (src/bindings/kv/kv-calls.ts) checks every key, option and size again and answers with
// Cloudflare's errors, so nothing here is trusted for a limit: the checks made here only spare a
// call (an unknown response type) or a copy (a value over 25 MiB).

import type { BindingMaker, CallBinding, CallPayload } from '../../bindings/sandbox.ts';
import type { BodySource } from '../../body/sandbox.ts';
import {
  ArrayBuffer, ArrayBufferIsView, ArrayIsArray, ArrayPrototypePush, Error, JSONParse, JSONStringify, Map, MapPrototypeSet, MathTrunc, Number,
  NumberIsFinite, ObjectDefineProperty, String, SymbolToStringTag, TypeError, Uint8Array,
} from '../../../sandbox/primordials.ts';

export interface KvDeps {
  utf8Encode(text: string): Uint8Array;
  utf8Decode(bytes: Uint8Array, keepBOM?: boolean): string;
  isReadableStream(value: unknown): boolean;
  /** The stream's bytes as a source; a TypeError when it is locked or already read. */
  sourceOf(stream: unknown): BodySource;
  /** A ReadableStream of these bytes. */
  streamOf(bytes: Uint8Array): unknown;
  /** Marks the class as one structuredClone refuses (a binding cannot be copied). */
  notSerializable(C: { prototype: object }): void;
}

type ValueType = 'text' | 'json' | 'arrayBuffer' | 'stream';

/** KV's largest value, checked here before a copy that the host would refuse anyway. */
const MAX_VALUE_BYTES = 25 * 1024 * 1024;
/** The most keys one bulk get may ask for. */
const MAX_BULK_KEYS = 100;

const UNKNOWN_TYPE = 'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".';
const BAD_VALUE = 'KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.';

export function create(deps: KvDeps): BindingMaker<'kv'> {
  const { utf8Encode, utf8Decode } = deps;
  const CONSTRUCT = {};

  function responseType(options: unknown): [ValueType, number | null] {
    let type: unknown = 'text';
    let cacheTtl: unknown = null;
    if (typeof options === 'string') type = options;
    else if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw new TypeError('The options of get() are a response type ("text", "json", "arrayBuffer", "stream") or { type, cacheTtl }.');
      const { type: t, cacheTtl: ttl } = options as { type?: unknown; cacheTtl?: unknown };
      if (t !== undefined && t !== null) type = String(t);
      if (ttl !== undefined && ttl !== null) cacheTtl = int(ttl);
    }
    if (type !== 'text' && type !== 'json' && type !== 'arrayBuffer' && type !== 'stream') throw new TypeError(UNKNOWN_TYPE);
    return [type, cacheTtl as number | null];
  }

  /**
   * A bulk get's options: its type goes to the host as given (the KV service refuses all but
   * "text" and "json", in its words), its cacheTtl as an integer.
   */
  function bulkOptions(options: unknown): [string | null, number | null] {
    if (typeof options === 'string') return [options, null];
    if (options === undefined || options === null) return [null, null];
    if (typeof options !== 'object') throw new TypeError('The options of get() are a response type ("text", "json") or { type, cacheTtl }.');
    const { type, cacheTtl } = options as { type?: unknown; cacheTtl?: unknown };
    return [type === undefined || type === null ? null : String(type), cacheTtl === undefined || cacheTtl === null ? null : int(cacheTtl)];
  }

  /** A get() or getWithMetadata() of an array of keys: a Map of each key to its value (null: no such key). */
  async function getBulk(call: CallBinding, keys: unknown[], options: unknown, withMetadata: boolean): Promise<Map<string, unknown>> {
    const names: string[] = [];
    // Read by index, as workerd converts the array; each key is made a string.
    for (let i = 0; i < keys.length; i++) ArrayPrototypePush(names, String(keys[i]));
    // The host says so too; past this the arguments could grow past what a call may carry.
    if (names.length > MAX_BULK_KEYS) throw new Error(`KV GET_BULK failed: 400 You can request a maximum of ${MAX_BULK_KEYS} keys`);
    const [type, cacheTtl] = bulkOptions(options);
    const answer = await call('getBulk', [names, type, withMetadata, cacheTtl]);
    const { sizes, metadata } = answer.value as { sizes: (number | null)[]; metadata?: unknown[] };
    const buffer = answer.bytes ?? new ArrayBuffer(0);
    const values = new Map<string, unknown>();
    for (let i = 0, at = 0; i < names.length; i++) {
      const size = sizes[i];
      if (size === null || size === undefined) {
        MapPrototypeSet(values, names[i]!, null);
        continue;
      }
      const text = utf8Decode(new Uint8Array(buffer, at, size), true);
      at += size;
      const value = type === 'json' ? JSONParse(text) : text;
      MapPrototypeSet(values, names[i]!, withMetadata ? { value, metadata: metadata?.[i] ?? null } : value);
    }
    return values;
  }

  /**
   * A number as workerd takes an `int` option: NaN and infinities are 0, fractions are cut, and
   * past the int32 range is a TypeError.
   */
  function int(value: unknown): number {
    const number = Number(value);
    if (!NumberIsFinite(number)) return 0;
    if (number > 2147483647 || number < -2147483648) throw new TypeError('Value out of range. Must be between -2147483648 and 2147483647 (inclusive).');
    return MathTrunc(number);
  }

  function convert(bytes: ArrayBuffer | null, type: ValueType): unknown {
    const data = bytes ?? new ArrayBuffer(0);
    if (type === 'arrayBuffer') return data;
    if (type === 'stream') return deps.streamOf(new Uint8Array(data));
    const text = utf8Decode(new Uint8Array(data), true);
    return type === 'json' ? JSONParse(text) : text;
  }

  /**
   * What put() sends of a value other than a stream: text or bytes, taken as they are when the
   * call is made (the platform copies them out), or a primitive's text.
   */
  function valuePayload(value: unknown): CallPayload {
    if (typeof value === 'string') {
      // Its UTF-8 is at least this long: only then is it encoded here, for the error's length.
      if (value.length > MAX_VALUE_BYTES) throw tooLarge(utf8Encode(value).byteLength);
      return value;
    }
    if (value instanceof ArrayBuffer || ArrayBufferIsView(value)) {
      const length = (value as ArrayBuffer | ArrayBufferView).byteLength;
      if (length > MAX_VALUE_BYTES) throw tooLarge(length);
      return value as ArrayBuffer | ArrayBufferView;
    }
    if (value !== null && (typeof value === 'object' || typeof value === 'function')) throw new TypeError(BAD_VALUE);
    // A primitive is stored as its text, as workerd converts it.
    return String(value);
  }

  /**
   * What put() sends of a stream: the request's own unread body, which the host reads itself
   * (its bytes never enter the isolate, and the worker pays nothing for them), or the stream's
   * chunks, read to its end (a length past the limit is counted, not kept).
   */
  async function streamPayload(stream: unknown): Promise<CallPayload> {
    const source = deps.sourceOf(stream);
    if (source.hostBody !== undefined) {
      // A body that says it is too long is refused before anyone reads it.
      if (typeof source.length === 'number' && source.length > MAX_VALUE_BYTES) throw tooLarge(source.length);
      return { requestBody: source.hostBody };
    }
    const chunks: Uint8Array[] = [];
    let length = 0;
    for (;;) {
      const chunk = await source.pull();
      if (chunk === null) break;
      length += chunk.byteLength;
      if (length <= MAX_VALUE_BYTES) ArrayPrototypePush(chunks, chunk);
    }
    if (length > MAX_VALUE_BYTES) throw tooLarge(length);
    return chunks;
  }

  function tooLarge(length: number): Error {
    return new Error(`KV PUT failed: 413 Value length of ${length} exceeds limit of ${MAX_VALUE_BYTES}.`);
  }

  class KvNamespace {
    readonly #call: CallBinding;

    constructor(token: unknown, call: CallBinding) {
      if (token !== CONSTRUCT) throw new TypeError('Illegal constructor');
      this.#call = call;
    }

    async get(key: unknown, options?: unknown): Promise<unknown> {
      if (ArrayIsArray(key)) return await getBulk(this.#call, key as unknown[], options, false);
      const [type, cacheTtl] = responseType(options);
      const answer = await this.#call('get', [String(key), cacheTtl]);
      return answer.value === null ? null : convert(answer.bytes, type);
    }

    async getWithMetadata(key: unknown, options?: unknown): Promise<{ value: unknown; metadata: unknown; cacheStatus: null } | Map<string, unknown>> {
      if (ArrayIsArray(key)) return await getBulk(this.#call, key as unknown[], options, true);
      const [type, cacheTtl] = responseType(options);
      const answer = await this.#call('get', [String(key), cacheTtl]);
      if (answer.value === null) return { value: null, metadata: null, cacheStatus: null };
      return { value: convert(answer.bytes, type), metadata: (answer.value as { metadata: unknown }).metadata ?? null, cacheStatus: null };
    }

    async put(key: unknown, value: unknown, options?: unknown): Promise<void> {
      const name = String(key);
      const { expiration, expirationTtl, metadata } = (options ?? {}) as { expiration?: unknown; expirationTtl?: unknown; metadata?: unknown };
      const checked = {
        expiration: expiration === undefined || expiration === null ? null : int(expiration),
        expirationTtl: expirationTtl === undefined || expirationTtl === null ? null : int(expirationTtl),
        metadata: metadata === undefined || metadata === null ? null : (JSONStringify(metadata) ?? null),
      };
      // A value other than a stream is handed over by the call put() makes before it returns.
      const payload = deps.isReadableStream(value) ? await streamPayload(value) : valuePayload(value);
      await this.#call('put', [name, checked], payload);
    }

    async delete(key: unknown): Promise<void> {
      await this.#call('delete', [String(key)]);
    }

    async list(options?: unknown): Promise<unknown> {
      const { prefix, limit, cursor } = (options ?? {}) as { prefix?: unknown; limit?: unknown; cursor?: unknown };
      const answer = await this.#call('list', [{
        prefix: prefix === undefined || prefix === null ? null : String(prefix),
        limit: limit === undefined || limit === null ? null : int(limit),
        cursor: cursor === undefined || cursor === null ? null : String(cursor),
      }]);
      const result = answer.value as { keys: unknown; list_complete: boolean; cursor?: string };
      return result.list_complete
        ? { keys: result.keys, list_complete: true, cacheStatus: null }
        : { keys: result.keys, list_complete: false, cursor: result.cursor, cacheStatus: null };
    }
  }
  // This module is minified with identifiers renamed: tenants see workerd's class name.
  ObjectDefineProperty(KvNamespace, 'name', { __proto__: null, value: 'KvNamespace', configurable: true });
  ObjectDefineProperty(KvNamespace.prototype, SymbolToStringTag, { __proto__: null, value: 'KvNamespace', configurable: true });
  deps.notSerializable(KvNamespace);

  return (_name, _spec, call) => new KvNamespace(CONSTRUCT, call);
}
