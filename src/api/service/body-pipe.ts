// A request body on its way from one worker to another in the same process: the caller writes
// it a chunk at a time (fetch.write), the called worker's request pulls it. A write resolves
// when the reader has taken its chunk, so the caller's stream is read only as fast as the called
// worker reads (backpressure), and at most one chunk waits between them.

export class BodyPipe implements AsyncIterable<Uint8Array> {
  readonly #chunks: { bytes: Uint8Array; taken: (wanted: boolean) => void }[] = [];
  #ended = false;
  #closed = false;
  #wake: (() => void) | undefined;

  /** Resolves true when the reader took the chunk (null: the end), false when it no longer reads. */
  write(chunk: Uint8Array | null): Promise<boolean> {
    if (this.#closed || this.#ended) return Promise.resolve(false);
    if (chunk === null) {
      this.#ended = true;
      this.#wakeUp();
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      this.#chunks.push({ bytes: chunk, taken: resolve });
      this.#wakeUp();
    });
  }

  /** No more is read or written: writers waiting are told their chunks are not wanted. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const chunk of this.#chunks.splice(0)) chunk.taken(false);
    this.#wakeUp();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: async () => {
        for (;;) {
          const chunk = this.#chunks.shift();
          if (chunk !== undefined) {
            chunk.taken(true);
            return { done: false, value: chunk.bytes };
          }
          if (this.#ended) return { done: true, value: undefined };
          if (this.#closed) throw new TypeError('The request body was cancelled by the worker that sent it.');
          await new Promise<void>((resolve) => (this.#wake = resolve));
        }
      },
      return: async () => {
        this.close();
        return { done: true, value: undefined };
      },
    };
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
