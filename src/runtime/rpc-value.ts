// An RPC call's arguments or its result on the way from one worker's isolate to another's.
//
// The host only hands such a value on. Reading it here would cost Node's main thread, which every
// tenant shares, the whole value twice (a structured copy read out, then written into the callee):
// 250-330 ms for a 40 MiB string, while every other tenant's I/O and timers waited
// (bench/event-loop-hold.ts). On isolet's isolated-vm a value the sandbox sends this way arrives as
// an ExternalCopy (the `externalLast` Callback option, native/isolated-vm/zzz-external-last.patch):
// copied out on the caller's thread when the call is made, and read into the callee on the
// callee's thread. Only a value that leaves the process (`isolet serve` sends calls between
// runtime processes) or reaches Node code (Runtime.call's caller) is read here. On a stock build the
// value arrives as a copy already read, and is written into the callee here, as before.
//
// A value is used once: handed into an isolate, read, or released (a call refused or dropped
// before it got anywhere). Its memory is outside every isolate's heap until then.

import ivm from 'isolated-vm';

/**
 * The value as an argument of an `apply` into an isolate (passed without isolated-vm's
 * `arguments: { copy: true }`, which would copy the handle rather than hand it in): read there,
 * on the isolate's thread, when the apply runs. For src/runtime alone: the class's public face
 * holds no isolated-vm type.
 */
export let intoIsolate: (value: RpcValue) => ivm.Transferable;

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
    this.#use();
    const copy = this.#copy ?? new ivm.ExternalCopy(this.#value);
    this.#copy = undefined;
    this.#value = undefined;
    return copy.copyInto({ release: true, transferIn: true });
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
