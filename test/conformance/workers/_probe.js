// Shared by every probe worker (imported as './_probe.js' in workerd and isolet alike): runs
// named checks and answers with one JSON object, one key per check, every value made
// JSON-safe by `ser` so that what JSON cannot say (undefined, NaN, -0, bytes, errors) still
// compares. Only the most basic platform pieces are used here (JSON, a plain Response), so a
// probe's answer survives the APIs it probes being broken.

/** A thrown value, described by what a program could observe of it. */
export function thrown(error) {
  if (error === null || typeof error !== 'object') return { $throws: typeof error, value: ser(error) };
  const out = { $throws: safe(() => error.constructor && error.constructor.name) ?? 'object' };
  out.name = safe(() => error.name);
  out.message = safe(() => error.message);
  if (typeof DOMException === 'function' && error instanceof DOMException) out.code = error.code;
  return out;
}

function safe(f) {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** A JSON-safe description of any value. */
export function ser(value, depth = 0) {
  if (depth > 6) return '$deep';
  switch (typeof value) {
    case 'undefined':
      return '$undefined';
    case 'number':
      if (Number.isNaN(value)) return '$NaN';
      if (value === Infinity) return '$Infinity';
      if (value === -Infinity) return '$-Infinity';
      if (Object.is(value, -0)) return '$-0';
      return value;
    case 'bigint':
      return `$bigint:${value}`;
    case 'symbol':
      return `$symbol:${value.description}`;
    case 'function':
      return `$function:${value.name}`;
    case 'string':
    case 'boolean':
      return value;
  }
  if (value === null) return null;
  if (value instanceof ArrayBuffer) return { $bytes: 'ArrayBuffer', data: Array.from(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return { $bytes: value.constructor.name, data: Array.from(bytes) };
  }
  if (Array.isArray(value)) return value.map((v) => ser(v, depth + 1));
  if (value instanceof Error) return { $error: value.constructor.name, name: value.name, message: value.message };
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [ser(k, depth + 1), ser(v, depth + 1)]) };
  if (value instanceof Set) return { $set: [...value].map((v) => ser(v, depth + 1)) };
  if (value instanceof Date) return { $date: Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString() };
  if (value instanceof RegExp) return { $regexp: String(value) };
  const proto = Object.getPrototypeOf(value);
  const out = {};
  if (proto !== Object.prototype && proto !== null) out.$class = safe(() => value.constructor.name) ?? '?';
  for (const key of Object.keys(value)) out[key] = ser(value[key], depth + 1);
  return out;
}

/**
 * Runs every check in order (each may be async) and answers with their results. A check that
 * throws records what it threw; so one broken API fails its own checks and no others.
 */
export async function probe(checks) {
  const out = {};
  for (const [name, check] of Object.entries(checks)) {
    try {
      out[name] = ser(await check());
    } catch (error) {
      out[name] = thrown(error);
    }
  }
  return new Response(JSON.stringify(out), { headers: { 'content-type': 'application/json' } });
}

/** What `f()` throws (or 'no error'), synchronously. */
export function err(f) {
  try {
    f();
    return 'no error';
  } catch (error) {
    return thrown(error);
  }
}

/** What `f()` rejects with (or 'no error'). */
export async function aerr(f) {
  try {
    await f();
    return 'no error';
  } catch (error) {
    return thrown(error);
  }
}

/** Routes a probe worker's requests: `routes` maps a pathname to a function returning checks. */
export function probeRoutes(routes) {
  return {
    async fetch(request, env, ctx) {
      const { pathname } = new URL(request.url);
      const route = routes[pathname];
      if (!route) return new Response(`no probe at ${pathname}`, { status: 404 });
      return probe(await route(request, env, ctx));
    },
  };
}
