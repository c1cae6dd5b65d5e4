// A value the host hands on: an RPC call's arguments or its result on the way from one worker's
// isolate to another's, or an argument of a binding call on its way to the embedder's function.
//
// The host only hands such a value on. Reading it here would cost Node's main thread, which every
// tenant shares, the whole value twice (a structured copy read out, then written into the callee):
// 250-330 ms for a 40 MiB string, while every other tenant's I/O and timers waited
// (bench/event-loop-hold.ts). On isolet's isolated-vm a value the sandbox sends this way arrives as
// an ExternalCopy (the `externalFrom` Callback option, native/isolated-vm/zzz-external-from.patch):
// copied out on the caller's thread when the call is made, and read into the callee on the
// callee's thread. A value that leaves the process (`isolet serve` sends calls between runtime
// processes) leaves as the bytes that copy holds, and arrives as a copy made of them
// (native/isolated-vm/zzz-serialized-bytes.patch), unread there too. Only a value that reaches
// Node code (Runtime.call's caller, an embedder's binding) is read here. On a stock build a value
// arrives as a copy already read, is written into the callee here, and crosses between processes
// as Node's serializer writes it (src/supervisor/rpc-values.ts).
//
// A value is used once: handed into an isolate, read, or released (a call refused or dropped
// before it got anywhere). Its memory is outside every isolate's heap until then.

import ivm from 'isolated-vm';

/** isolet's isolated-vm (zzz-serialized-bytes.patch): a copy of bytes in, and a copy's bytes out. */
interface SerializedCopies {
  fromSerialized(bytes: Uint8Array): ivm.ExternalCopy;
}
interface SerializedCopy {
  serialized(): ArrayBuffer | undefined;
  serializedLength(): number | undefined;
}
const serializedCopies = (ivm.ExternalCopy as unknown as Partial<SerializedCopies>).fromSerialized === undefined
  ? undefined
  : ivm.ExternalCopy as unknown as SerializedCopies;

/**
 * The value as an argument of an `apply` into an isolate (passed without isolated-vm's
 * `arguments: { copy: true }`, which would copy the handle rather than hand it in): read there,
 * on the isolate's thread, when the apply runs. For src/runtime alone: the class's public face
 * holds no isolated-vm type.
 */
export let intoIsolate: (value: RpcValue) => ivm.Transferable;

/**
 * Whether an apply into an isolate failed because a value made of another process's bytes could
 * not be read there (fromBytes; isolated-vm's checks and V8's deserializer say so in these words):
 * the call it carried fails, rather than the isolate's work.
 */
export function unreadable(error: unknown): boolean {
  return error instanceof Error && (error.message === 'Unable to deserialize cloned data.' || error.message === 'Serialized data names a value it does not hold');
}

export class RpcValue {
  #copy: ivm.ExternalCopy | undefined;
  #value: unknown;
  #used = false;

  private constructor(copy: ivm.ExternalCopy | undefined, value: unknown) {
    this.#copy = copy;
    this.#value = value;
  }

  /** What a host call carried out of an isolate: an ExternalCopy on isolet's build, a copy on a stock one (src/runtime only). */
  static crossed(value: unknown): RpcValue {
    return value instanceof ivm.ExternalCopy ? new RpcValue(value, undefined) : new RpcValue(undefined, value);
  }

  /** A value of this thread (Runtime.call's arguments, a result read from another process). */
  static of(value: unknown): RpcValue {
    return new RpcValue(undefined, value);
  }

  /**
   * The bytes the value's copy holds outside every heap, as far as this build can tell: 0 for a
   * value of this thread, or on a build without `serializedLength`.
   */
  get size(): number {
    if (serializedCopies === undefined || this.#copy === undefined) return 0;
    return (this.#copy as unknown as SerializedCopy).serializedLength() ?? 0;
  }

  /** Whether this build sends values between processes as their copies' bytes (toBytes, fromBytes). */
  static readonly crossesAsBytes = serializedCopies !== undefined;

  /**
   * A value another process sent as toBytes() gave it: a copy that holds those bytes, read only
   * in the isolate it goes into. The bytes are untrusted and must not change after.
   */
  static fromBytes(bytes: Uint8Array): RpcValue {
    if (serializedCopies === undefined) throw new Error('This build of isolated-vm cannot make a copy of bytes (RpcValue.crossesAsBytes).');
    return new RpcValue(serializedCopies.fromSerialized(bytes), undefined);
  }

  /**
   * The value as bytes for another process (fromBytes): the bytes its copy holds, not read or
   * copied here; undefined when it holds what bytes cannot carry (shared memory, a
   * WebAssembly.Module) or this build cannot (crossesAsBytes).
   */
  toBytes(): Uint8Array | undefined {
    if (serializedCopies === undefined) return undefined;
    const copy = this.#take();
    try {
      const bytes = (copy as unknown as SerializedCopy).serialized();
      return bytes === undefined ? undefined : new Uint8Array(bytes);
    } finally {
      // The bytes share the copy's memory and keep it: the handle can go.
      copy.release();
    }
  }

  /** The value on this thread: read here if it was not yet, at this thread's cost. */
  read(): unknown {
    this.#use();
    const copy = this.#copy;
    if (copy === undefined) return this.#value;
    this.#copy = undefined;
    try {
      return copy.copy({ transferIn: true });
    } finally {
      copy.release();
    }
  }

  static {
    intoIsolate = (value) => value.#intoIsolate();
  }

  #intoIsolate(): ivm.Transferable {
    return this.#take().copyInto({ release: true, transferIn: true });
  }

  /** The value's copy, made here for a value of this thread; the value is used. */
  #take(): ivm.ExternalCopy {
    this.#use();
    const copy = this.#copy ?? new ivm.ExternalCopy(this.#value);
    this.#copy = undefined;
    this.#value = undefined;
    return copy;
  }

  /** Frees the value if it was never used. */
  release(): void {
    this.#used = true;
    this.#copy?.release();
    this.#copy = undefined;
    this.#value = undefined;
  }

  #use(): void {
    if (this.#used) throw new Error('An RPC value is handed on once.');
    this.#used = true;
  }
}
