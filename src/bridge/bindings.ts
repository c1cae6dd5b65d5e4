// Bindings as they cross the isolate wall, declared once for both sides: the specs of the
// bindings the platform implements (data, which also crosses to runtime processes as JSON), what
// the host hands the sandbox's `register` entry to build `env` from, and the bounds every binding
// call is held to. src/runtime/types.ts re-exports BindingSpec for embedders and the server; the
// sandbox imports it from here, since it cannot compile the host's types.

/** A binding the platform implements, given as data: it crosses to runtime processes as JSON. */
export type BindingSpec =
  | { type: 'kv'; namespaceId: string }
  | { type: 'service'; service: string; entrypoint?: string }
  | { type: 'assets' }
  /**
   * No API of its own: `env.NAME.call(method, args, bytes)` reaches the handler registered for
   * 'raw' as it crosses (src/server/binding-handlers.ts). `isolet serve` refuses it unless such a
   * handler is registered; its tests register one to exercise the forwarding path.
   */
  | { type: 'raw' };

export type BindingType = BindingSpec['type'];

/** Every binding type, for checks that must know them at run time. */
export const BINDING_TYPES = ['kv', 'service', 'assets', 'raw'] as const satisfies readonly BindingType[];

/**
 * One binding as the sandbox's `register` entry receives it: a platform binding's spec, or the
 * names of a host binding's methods (the functions themselves stay on the host).
 */
export type EnvBinding = { spec: BindingSpec } | { methods: string[] };

/** The bounds of one binding call, checked where it arrives (the host, the control process). */
export const BINDING_LIMITS = Object.freeze({
  /** Longest env name and method name. */
  nameChars: 128,
  /** Most bindings one worker may have, and methods one host binding may have. */
  bindings: 256,
  methods: 256,
  /** A platform binding's JSON arguments, as text. */
  argsBytes: 1024 * 1024,
  /** Deepest nesting of those arguments. */
  argsDepth: 32,
  /**
   * What a binding call's arguments may hold inside objects and arrays, as serialized: the host
   * reads those on the thread every tenant of the process shares (~4 ms a MiB). A top-level
   * ArrayBuffer, typed array or string moves in without being read, and is not counted.
   */
  nestedBytes: 8 * 1024 * 1024,
  /** The one binary payload a platform binding call carries each way (a KV value is at most 25 MiB). */
  bytes: 32 * 1024 * 1024,
  /** Longest error name and message that cross back. */
  errorNameChars: 128,
  errorMessageChars: 16 * 1024,
});

/** Env names: what a worker reads as `env.NAME` (and a service-worker script as a global). */
export const ENV_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/;
