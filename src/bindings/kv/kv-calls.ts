// The host's answer to a worker's KV binding call (src/api/kv/sandbox/module.ts makes them):
// every argument checked as hostile and against Cloudflare's limits (kv-rules.ts), then the
// store. Errors reach the worker as workerd words them: an argument's TypeError, or
// `Error: KV PUT failed: 413 Value length of ...`. Used by `isolet serve`'s control process
// (src/server/kv-binding-handler.ts) and by `isolet dev` (src/cli/dev-kv.ts).

import { BindingError, type BindingAnswer, type JsonValue } from '../../runtime/types.ts';
import type { KvStore } from '../../store/kv-store.ts';
import { StoreError, StoreUnavailableError, type Owner } from '../../store/store.ts';
import { KV_LIMITS, KvError, checkBulkKeys, checkBulkType, checkCacheTtl, checkKey, checkListOptions, checkPutOptions, checkValueLength, nowSeconds } from './kv-rules.ts';

/** One call as it reaches the host: which namespace (from the worker's deployed spec, never the sandbox), and what the sandbox sent. */
export interface KvCall {
  /** The env name of the binding, for messages. */
  name: string;
  namespaceId: string;
  /** The account the namespace must belong to (undefined: local development, no accounts). */
  owner: Owner;
  method: string;
  args: JsonValue[];
  bytes?: Uint8Array;
}

/** The HTTP verb workerd names in a failed call's message. */
const VERB: Record<string, string> = { get: 'GET', getBulk: 'GET_BULK', list: 'GET', put: 'PUT', delete: 'DELETE' };

export async function answerKvCall(kv: KvStore, call: KvCall): Promise<BindingAnswer> {
  const verb = Object.hasOwn(VERB, call.method) ? VERB[call.method]! : undefined;
  if (verb === undefined) throw new BindingError('TypeError', `A KV namespace has no method '${call.method.slice(0, 64)}'.`);
  const context = { owner: call.owner, now: nowSeconds() };
  const [first, second] = call.args;
  try {
    switch (call.method) {
      case 'get': {
        const key = checkKey(first);
        checkCacheTtl(second);
        const entry = await kv.get(call.namespaceId, key, context);
        return entry === undefined ? { value: null } : { value: { metadata: entry.metadata ?? null }, bytes: entry.value };
      }
      case 'getBulk':
        return await getBulk(kv, call, context);
      case 'put': {
        const key = checkKey(first);
        const options = checkPutOptions(plainObject(second, 'put() options'), context.now);
        const value = call.bytes ?? new Uint8Array(0);
        checkValueLength(value.byteLength);
        await kv.put(call.namespaceId, key, { value, ...options }, context);
        return { value: null };
      }
      case 'delete': {
        await kv.delete(call.namespaceId, checkKey(first), context);
        return { value: null };
      }
      default: {
        const result = await kv.list(call.namespaceId, checkListOptions(plainObject(first, 'list() options')), context);
        return { value: result as unknown as JsonValue };
      }
    }
  } catch (error) {
    throw asBindingError(error, verb, call);
  }
}

/**
 * get() or getWithMetadata() of an array of keys, args (keys, type, withMetadata, cacheTtl): the
 * values in the keys' order as one payload, `sizes` saying where each ends (null: no such key),
 * and `metadata` when asked. A JSON type is checked here, as the service checks it before it
 * answers; the isolate decodes and parses.
 */
async function getBulk(kv: KvStore, call: KvCall, context: { owner: Owner; now: number }): Promise<BindingAnswer> {
  const [keysArg, typeArg, withMetadata, cacheTtl] = call.args;
  const keys = checkBulkKeys(keysArg);
  const type = checkBulkType(typeArg);
  checkCacheTtl(cacheTtl);
  const sizes: (number | null)[] = [];
  const metadata: JsonValue[] = [];
  const values: Uint8Array[] = [];
  let total = 0;
  for (const key of keys) {
    const entry = await kv.get(call.namespaceId, key, context);
    sizes.push(entry === undefined ? null : entry.value.byteLength);
    metadata.push(entry?.metadata ?? null);
    if (entry === undefined) continue;
    total += entry.value.byteLength;
    if (total > KV_LIMITS.maxValueBytes) throw new KvError('too_large', 413, `Total size of request exceeds the limit of ${KV_LIMITS.maxValueBytes / 1024 / 1024}MB`);
    if (type === 'json') {
      try {
        JSON.parse(Buffer.from(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength).toString('utf8'));
      } catch {
        throw new KvError('invalid', 400, 'At least one of the requested keys corresponds to a non-json value');
      }
    }
    values.push(entry.value);
  }
  return { value: withMetadata === true ? { sizes, metadata } : { sizes }, bytes: Buffer.concat(values, total) };
}

function plainObject(value: JsonValue | undefined, what: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new KvError('type', 400, `The ${what} must be an object.`);
  return value;
}

/** What the worker sees for a refused call; any other error is the caller's to handle. */
function asBindingError(error: unknown, verb: string, call: KvCall): unknown {
  if (error instanceof KvError) {
    return error.kind === 'type' ? new BindingError('TypeError', error.message) : new BindingError('Error', `KV ${verb} failed: ${error.status} ${error.message}`);
  }
  if (error instanceof StoreError) {
    if (error.code === 'not_found') {
      return new BindingError('Error', `KV ${verb} failed: 404 The KV namespace '${call.namespaceId}' bound as ${call.name} does not exist: it was deleted, or the worker was deployed with another account's id.`);
    }
    return new BindingError('Error', `KV ${verb} failed: ${error.code === 'forbidden' ? 413 : 400} ${error.message}`);
  }
  if (error instanceof StoreUnavailableError) return new BindingError('Error', `KV ${verb} failed: 503 The KV store is unavailable for now; try again.`);
  return error;
}
