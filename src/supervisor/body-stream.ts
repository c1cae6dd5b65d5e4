// A body crossing the channel, in either direction, with backpressure: the sender has at most
// STREAM_WINDOW_BYTES on the wire or in the receiver's buffer, and the receiver gives bytes
// back as credit only when its reader takes them. So a client that reads slowly holds the
// worker's stream still in its runtime process, and a worker that reads its request body
// slowly holds the client's upload in the socket, as in one process.

import { CHUNK_BYTES, ProtocolError, STREAM_WINDOW_BYTES } from './messages.ts';

export type BodySource = AsyncIterable<Uint8Array> | Uint8Array | string;

/** Sends a body as frames no faster than the receiver takes them. */
export class OutgoingBody {
  readonly #send: (chunk: Uint8Array) => void;
  #credit = STREAM_WINDOW_BYTES;
  #wake: (() => void) | undefined;
  #cancelled = false;
  #iterator: AsyncIterator<Uint8Array> | undefined;

  constructor(send: (chunk: Uint8Array) => void) {
    this.#send = send;
  }

  /** The receiver took `bytes`. */
  credit(bytes: number): void {
    this.#credit += bytes;
    this.#wakeUp();
  }

  /** The receiver wants no more: the source is told to stop. */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#wakeUp();
    void this.#iterator?.return?.().catch(() => {});
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Sends the whole source; resolves false when cancelled first. Rejects with the source's error. */
  async pump(source: BodySource): Promise<boolean> {
    if (typeof source === 'string' || source instanceof Uint8Array) {
      const bytes = typeof source === 'string' ? Buffer.from(source) : source;
      return this.#sendSliced(bytes);
    }
    const iterator = source[Symbol.asyncIterator]();
    this.#iterator = iterator;
    while (!this.#cancelled) {
      const next = await iterator.next();
      if (next.done) return !this.#cancelled;
      if (!(await this.#sendSliced(next.value))) return false;
    }
    return false;
  }

  async #sendSliced(bytes: Uint8Array): Promise<boolean> {
    let offset = 0;
    while (offset < bytes.byteLength) {
      while (this.#credit <= 0 && !this.#cancelled) await new Promise<void>((resolve) => (this.#wake = resolve));
      if (this.#cancelled) return false;
      const end = Math.min(bytes.byteLength, offset + CHUNK_BYTES, offset + this.#credit);
      const chunk = bytes.subarray(offset, end);
      offset = end;
      this.#credit -= chunk.byteLength;
      this.#send(chunk);
    }
    return !this.#cancelled;
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** A body arriving as frames, read as an async iterable; each chunk read is given back as credit. */
export class IncomingBody implements AsyncIterable<Uint8Array> {
  readonly #credit: (bytes: number) => void;
  readonly #cancel: () => void;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #done = false;

  constructor(credit: (bytes: number) => void, cancel: () => void) {
    this.#credit = credit;
    this.#cancel = cancel;
  }

  push(chunk: Uint8Array): void {
    if (this.#done) return;
    this.#buffered += chunk.byteLength;
    // The sender keeps to the window; one that does not is broken or hostile.
    if (this.#buffered > STREAM_WINDOW_BYTES) throw new ProtocolError('a body sent past its window');
    this.#chunks.push(chunk);
    this.#wakeUp();
  }

  end(): void {
    this.#ended = true;
    this.#wakeUp();
  }

  fail(error: Error): void {
    if (this.#ended) return;
    this.#error = error;
    this.#ended = true;
    this.#wakeUp();
  }

  /** Whether the reader is finished with it (read to the end, failed or cancelled). */
  get done(): boolean {
    return this.#done;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.#next(),
      return: async () => {
        if (!this.#done) {
          this.#done = true;
          this.#chunks.length = 0;
          if (!this.#ended) this.#cancel();
        }
        return { done: true, value: undefined };
      },
    };
  }

  async #next(): Promise<IteratorResult<Uint8Array>> {
    while (!this.#done) {
      const chunk = this.#chunks.shift();
      if (chunk !== undefined) {
        this.#buffered -= chunk.byteLength;
        if (!this.#ended) this.#credit(chunk.byteLength);
        return { done: false, value: chunk };
      }
      if (this.#ended) {
        this.#done = true;
        if (this.#error !== undefined) throw this.#error;
        break;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    return { done: true, value: undefined };
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
