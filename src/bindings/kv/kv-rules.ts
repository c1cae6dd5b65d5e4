// Cloudflare KV's limits, and its errors in its own words (workerd's KV binding for argument
// errors, the KV service's answers for the rest), checked on the host for every caller: a
// worker's binding, the admin API and the CLI through it. What arrives here may come from a
// hostile sandbox, so every value is checked for its type as well as its limit.

export const KV_LIMITS = Object.freeze({
  maxKeyBytes: 512,
  /** Keys one bulk get (get() of an array) may ask for. */
  maxBulkKeys: 100,
  maxValueBytes: 25 * 1024 * 1024,
  maxMetadataBytes: 1024,
  /** Seconds: the least expirationTtl, and how far ahead an expiration must be. */
  minExpirationTtl: 60,
  maxListKeys: 1000,
  /** Seconds: the least cacheTtl a get may ask for. */
  minCacheTtl: 30,
});

/**
 * A refused KV argument. `type`: an argument a Worker's call would get a TypeError for; the others
 * are the service's answer, with its HTTP status (`too_large`: 413 or 414, else 400).
 */
export class KvError extends Error {
  override name = 'KvError';
  readonly kind: 'type' | 'invalid' | 'too_large';
  readonly status: number;
  constructor(kind: 'type' | 'invalid' | 'too_large', status: number, message: string) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** The key as stored: a string, not '', '.' or '..', at most 512 bytes of UTF-8. */
export function checkKey(key: unknown): string {
  if (typeof key !== 'string') throw new KvError('type', 400, 'A key name must be a string.');
  if (key === '') throw new KvError('type', 400, 'Key name cannot be empty.');
  if (key === '.' || key === '..') throw new KvError('type', 400, `"${key}" is not allowed as a key name.`);
  checkKeyLength(key);
  return key;
}

function checkKeyLength(key: string): void {
  const length = Buffer.byteLength(key);
  if (length > KV_LIMITS.maxKeyBytes) {
    throw new KvError('too_large', 414, `UTF-8 encoded length of ${length} exceeds key length limit of ${KV_LIMITS.maxKeyBytes}.`);
  }
}

/**
 * A bulk get's keys (get() or getWithMetadata() of an array), in the KV service's words, which
 * are not the single get's: 1 to 100 keys, each not '', '.' or '..' and at most 512 bytes.
 */
export function checkBulkKeys(keys: unknown): string[] {
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string')) throw new KvError('type', 400, 'A bulk get takes an array of key names.');
  if (keys.length > KV_LIMITS.maxBulkKeys) throw new KvError('invalid', 400, `You can request a maximum of ${KV_LIMITS.maxBulkKeys} keys`);
  if (keys.length === 0) throw new KvError('invalid', 400, 'You must request a minimum of 1 key');
  for (const key of keys as string[]) {
    if (key === '' || key === '.' || key === '..') throw new KvError('invalid', 400, `Key name ${key} is not legal`);
    const length = Buffer.byteLength(key);
    if (length > KV_LIMITS.maxKeyBytes) throw new KvError('too_large', 414, `Encoded length of ${length} is too long`);
  }
  return keys as string[];
}

/** A bulk get's type: text (the default) or JSON; the values of the other types are no text the service can put in its answer. */
export function checkBulkType(type: unknown): 'text' | 'json' {
  if (type == null || type === 'text') return 'text';
  if (type === 'json') return 'json';
  throw new KvError('invalid', 400, `${JSON.stringify(show(String(type)))} is not a valid type. Use "json" or "text"`);
}

export function checkValueLength(length: number): void {
  if (length > KV_LIMITS.maxValueBytes) throw new KvError('too_large', 413, `Value length of ${length} exceeds limit of ${KV_LIMITS.maxValueBytes}.`);
}

export interface PutOptions {
  /** Seconds since the epoch. */
  expiration?: number;
  /** JSON text. */
  metadata?: string;
}

/**
 * put()'s options: `expirationTtl` (seconds, at least 60; it wins over `expiration`),
 * `expiration` (seconds since the epoch, at least 60 s ahead of `now`), `metadata` (JSON text of
 * at most 1024 bytes). Numbers may come as text (the admin API's query).
 */
export function checkPutOptions(options: { expiration?: unknown; expirationTtl?: unknown; metadata?: unknown }, now: number): PutOptions {
  const checked: PutOptions = {};
  if (options.expirationTtl != null) {
    const ttl = wholeNumber(options.expirationTtl);
    if (ttl === undefined || ttl <= 0) throw new KvError('invalid', 400, `Invalid expiration_ttl of ${show(options.expirationTtl)}. Please specify integer greater than 0.`);
    if (ttl < KV_LIMITS.minExpirationTtl) {
      throw new KvError('invalid', 400, `Invalid expiration_ttl of ${show(options.expirationTtl)}. Expiration TTL must be at least ${KV_LIMITS.minExpirationTtl}.`);
    }
    checked.expiration = now + ttl;
  } else if (options.expiration != null) {
    const expiration = wholeNumber(options.expiration);
    if (expiration === undefined || expiration <= now) {
      throw new KvError('invalid', 400, `Invalid expiration of ${show(options.expiration)}. Please specify integer greater than the current number of seconds since the UNIX epoch.`);
    }
    if (expiration < now + KV_LIMITS.minExpirationTtl) {
      throw new KvError('invalid', 400, `Invalid expiration of ${show(options.expiration)}. Expiration times must be at least ${KV_LIMITS.minExpirationTtl} seconds in the future.`);
    }
    checked.expiration = expiration;
  }
  if (options.metadata != null) {
    if (typeof options.metadata !== 'string') throw new KvError('type', 400, 'Metadata must be JSON text.');
    const length = Buffer.byteLength(options.metadata);
    if (length > KV_LIMITS.maxMetadataBytes) throw new KvError('too_large', 413, `Metadata length of ${length} exceeds limit of ${KV_LIMITS.maxMetadataBytes}.`);
    try {
      JSON.parse(options.metadata);
    } catch {
      throw new KvError('invalid', 400, 'Metadata is not valid JSON.');
    }
    checked.metadata = options.metadata;
  }
  return checked;
}

export interface ListOptions {
  prefix?: string;
  limit: number;
  cursor?: string;
}

/**
 * list()'s options: `limit` 1 to 1000 (default 1000; 0 or less means the default, as workerd
 * sends no limit then), `prefix` at most 512 bytes, `cursor` from a previous list.
 */
export function checkListOptions(options: { prefix?: unknown; limit?: unknown; cursor?: unknown }): ListOptions {
  let limit: number = KV_LIMITS.maxListKeys;
  if (options.limit != null) {
    const asked = wholeNumber(options.limit);
    if (asked === undefined) throw new KvError('invalid', 400, `Invalid key_count_limit of ${show(options.limit)}. Please specify an integer greater than 0.`);
    if (asked > KV_LIMITS.maxListKeys) {
      throw new KvError('invalid', 400, `Invalid key_count_limit of ${asked}. Please specify an integer less than ${KV_LIMITS.maxListKeys}.`);
    }
    if (asked > 0) limit = asked;
  }
  const checked: ListOptions = { limit };
  if (options.prefix != null) {
    if (typeof options.prefix !== 'string') throw new KvError('type', 400, 'A list prefix must be a string.');
    checkKeyLength(options.prefix);
    if (options.prefix !== '') checked.prefix = options.prefix;
  }
  if (options.cursor != null) {
    if (typeof options.cursor !== 'string') throw new KvError('type', 400, 'A list cursor must be a string.');
    if (options.cursor !== '') checked.cursor = options.cursor;
  }
  return checked;
}

/** get()'s cacheTtl: accepted (at least 30) and unused, since every read goes to the store. */
export function checkCacheTtl(cacheTtl: unknown): void {
  if (cacheTtl == null) return;
  const ttl = typeof cacheTtl === 'number' ? cacheTtl : Number.NaN;
  if (Number.isNaN(ttl) || ttl < KV_LIMITS.minCacheTtl) {
    throw new KvError('invalid', 400, `Invalid cache_ttl of ${show(cacheTtl)}. Cache TTL must be at least ${KV_LIMITS.minCacheTtl}.`);
  }
}

/** Seconds since the epoch, as KV counts them. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A whole number from a number or decimal text (fractions are cut, as workerd's integer options are). */
function wholeNumber(value: unknown): number | undefined {
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : Number.NaN;
  return Number.isFinite(number) ? Math.trunc(number) : undefined;
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return text.length > 40 ? text.slice(0, 37) + '...' : text;
}
