// KVNamespace, the object a worker's `kv_namespaces` binding is in `env`: get (text, json,
// arrayBuffer, stream; cacheTtl), getWithMetadata, put (string, ArrayBuffer, view or
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
  ArrayBuffer, ArrayBufferIsView, ArrayPrototypePush, Error, JSONParse, JSONStringify, Number, ObjectDefineProperty,
  String, SymbolToStringTag, TypeError, Uint8Array,
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
      if (ttl !== undefined && ttl !== null) cacheTtl = Number(ttl);
    }
    if (type !== 'text' && type !== 'json' && type !== 'arrayBuffer' && type !== 'stream') throw new TypeError(UNKNOWN_TYPE);
    return [type, cacheTtl as number | null];
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
      const [type, cacheTtl] = responseType(options);
      const answer = await this.#call('get', [String(key), cacheTtl]);
      return answer.value === null ? null : convert(answer.bytes, type);
    }

    async getWithMetadata(key: unknown, options?: unknown): Promise<{ value: unknown; metadata: unknown; cacheStatus: null }> {
      const [type, cacheTtl] = responseType(options);
      const answer = await this.#call('get', [String(key), cacheTtl]);
      if (answer.value === null) return { value: null, metadata: null, cacheStatus: null };
      return { value: convert(answer.bytes, type), metadata: (answer.value as { metadata: unknown }).metadata ?? null, cacheStatus: null };
    }

    async put(key: unknown, value: unknown, options?: unknown): Promise<void> {
      const name = String(key);
      const { expiration, expirationTtl, metadata } = (options ?? {}) as { expiration?: unknown; expirationTtl?: unknown; metadata?: unknown };
      const checked = {
        expiration: expiration === undefined || expiration === null ? null : Number(expiration),
        expirationTtl: expirationTtl === undefined || expirationTtl === null ? null : Number(expirationTtl),
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
        limit: limit === undefined || limit === null ? null : Number(limit),
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
