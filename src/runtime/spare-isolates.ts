// Spare isolates: a few isolates with a context, made from the runtime image ahead of demand,
// so a tenant's cold start skips V8's deserialisation of the isolate and its context (most of
// a cold start's cost). They belong to no tenant until taken; a taken spare is replaced one at
// a time, off the request that took it.
//
// Making an isolate takes a few milliseconds of CPU (on the serving thread itself with the
// prebuilt isolated-vm, see new-isolate.ts), so a refill waits until no cold start is under way:
// otherwise it would compete with the very start it was meant to spare.

import ivm from 'isolated-vm';
import type { RuntimeImage } from './runtime-image.ts';
import { takeSandboxEntries, type EntryPoints } from './sandbox-entries.ts';
import { newIsolate } from './new-isolate.ts';
import { disposeIsolate } from './isolate-teardown.ts';

const REFILL_RETRY_MS = 5;

export interface Spare {
  isolate: ivm.Isolate;
  context: ivm.Context;
  /** The sandbox's entry points, already taken off the context's global. */
  entries: EntryPoints;
  /** Who owns the isolate now, for the catastrophic-error log line; set when taken. */
  owner: { name: string };
}

export class SpareIsolates {
  private readonly ready: Spare[] = [];
  private filling = false;
  private closed = false;
  /** The spare being made now, on another thread: close() waits for it. */
  private making: Promise<Spare> | undefined;
  private readonly image: RuntimeImage;
  private readonly size: number;
  /** Spares are made with this memory limit; workers with another one start their own isolate. */
  readonly memoryMb: number;
  private readonly onCatastrophicError: (worker: string, message: string) => void;
  private readonly busy: () => boolean;

  constructor(
    image: RuntimeImage,
    size: number,
    memoryMb: number,
    onCatastrophicError: (worker: string, message: string) => void,
    busy: () => boolean = () => false,
  ) {
    this.image = image;
    this.size = size;
    this.memoryMb = memoryMb;
    this.onCatastrophicError = onCatastrophicError;
    this.busy = busy;
  }

  get count(): number {
    return this.ready.length;
  }

  /** A ready spare for a worker with this memory limit, or undefined; starts a refill either way. */
  take(memoryMb: number): Spare | undefined {
    const spare = memoryMb === this.memoryMb ? this.ready.shift() : undefined;
    this.fill();
    return spare;
  }

  /** Makes spares until there are `size`, one at a time, whenever no cold start is under way. */
  fill(): void {
    if (this.filling || this.closed || this.ready.length >= this.size) return;
    this.filling = true;
    const attempt = () => {
      if (this.closed) {
        this.filling = false;
        return;
      }
      if (this.busy()) {
        setTimeout(attempt, REFILL_RETRY_MS).unref();
        return;
      }
      const making = this.make();
      this.making = making;
      making.finally(() => {
        if (this.making === making) this.making = undefined;
      }).catch(() => {});
      making.then(
        (spare) => {
          this.filling = false;
          if (this.closed) {
            void disposeIsolate(spare.isolate);
            return;
          }
          this.ready.push(spare);
          this.fill();
        },
        () => {
          // Out of memory or address space: run without spares rather than retry in a loop.
          this.filling = false;
        },
      );
    };
    setTimeout(attempt, REFILL_RETRY_MS).unref();
  }

  private async make(): Promise<Spare> {
    const owner = { name: '(spare isolate)' };
    const isolate = await newIsolate({
      memoryLimit: this.memoryMb,
      snapshot: this.image.snapshot,
      onCatastrophicError: (message) => this.onCatastrophicError(owner.name, message),
    });
    try {
      const context = await isolate.createContext();
      return { isolate, context, entries: takeSandboxEntries(context), owner };
    } catch (error) {
      void disposeIsolate(isolate);
      throw error;
    }
  }

  /**
   * Disposes the ready spares, and the one being made once it is made: V8 crashes a process
   * that exits while another thread is still making or tearing down an isolate, so an owner
   * awaits this, then teardownsOver(), before it lets the process end.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const spare of this.ready.splice(0)) void disposeIsolate(spare.isolate);
    // The spare's own handler (above) disposes it, as the pool is closed.
    await this.making?.catch(() => {});
  }
}
