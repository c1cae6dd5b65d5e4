// The host side of a request's body: the source the embedder or the HTTP front gave (an async
// iterator of byte chunks), read in three ways.
//
// - read(): the next piece for the isolate (`body.read`). Chunks already waiting at the source
//   are joined, up to MAX_READ_BYTES, into one buffer made for this read alone, which moves into
//   the isolate without a further copy: a crossing of the wall costs more than copying 64 KiB,
//   so fewer, larger crossings are what make a body stream through a worker at memory speed.
// - readWhole(): all the rest at once (`body.readWhole`, when the worker asks for arrayBuffer(),
//   text(), ...): one buffer, sized from Content-Length when given, so the isolate holds exactly
//   one copy and joins nothing (which cost it twice the body's memory and its CPU). Bounded by
//   the isolate's memory limit, so that no tenant can make the host buffer without bound.
// - next(): the source's own chunks, uncopied, for a body the worker sends on unread.
//
// Chunks are held by reference until they are copied into the buffer handed over, so a chunk
// must not change once the source has yielded it (as with Node's streams).

/** What one read hands the isolate at most, joining chunks that are already waiting. */
export const MAX_READ_BYTES = 1024 * 1024;

const MB = 1024 * 1024;

/** The worker asked for a whole body larger than it could hold. */
export class BodyTooLargeError extends RangeError {
  constructor(bytes: number | undefined, capBytes: number) {
    const size = bytes === undefined ? 'more than' : `${(bytes / MB).toFixed(1)} MB, more than`;
    super(
      `The request body is too large to read whole (${size} the worker's memory limit of ${capBytes / MB} MB): ` +
        'read it a piece at a time from request.body instead, or raise the memory limit.',
    );
    this.name = 'RangeError';
  }
}

/** Stands for "the source has nothing ready in this turn of the event loop". */
const NOT_READY = Symbol('not ready');

export class RequestBody implements AsyncIterator<Uint8Array> {
  readonly #source: AsyncIterator<Uint8Array>;
  /** Content-Length, when the request declared one. */
  #declared: number | null | undefined;
  /** A read of the source started but not waited for (read() joins only what is ready). */
  #ahead: Promise<IteratorResult<Uint8Array>> | undefined;
  #done = false;

  constructor(source: AsyncIterator<Uint8Array>) {
    this.#source = source;
  }

  /** The request's Content-Length header says how long the body is (two that differ say nothing). */
  declare(contentLength: string): void {
    const value = contentLength.trim();
    const length = /^[0-9]{1,15}$/.test(value) ? Number(value) : null;
    this.#declared = this.#declared === undefined || this.#declared === length ? length : null;
  }

  /** The source has ended (or failed): nothing more will come. */
  get done(): boolean {
    return this.#done;
  }

  /** The source's next chunk as it is (a body sent on unread needs no copy). */
  async next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = await this.#pull();
    return chunk === null ? { done: true, value: undefined } : { done: false, value: chunk };
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    this.#done = true;
    this.#ahead = undefined;
    await this.#source.return?.();
    return { done: true, value: undefined };
  }

  /** The next piece, as a buffer of its own: the next chunk and those already waiting behind it. */
  async read(): Promise<ArrayBuffer | null> {
    const first = await this.#pull();
    if (first === null) return null;
    const parts = [first];
    let size = first.byteLength;
    if (size >= MAX_READ_BYTES || this.#done) return join(parts, size).buffer;
    // One turn of the event loop for everything that is ready: a source that has to wait for
    // the network is not waited for (its pending read is the next read's first chunk).
    let turnOver = false;
    const turn = new Promise<typeof NOT_READY>((resolve) => setImmediate(() => {
      turnOver = true;
      resolve(NOT_READY);
    }));
    while (size < MAX_READ_BYTES && !this.#done && !turnOver) {
      const chunk = await this.#pullReady(turn);
      if (chunk === NOT_READY || chunk === null) break;
      parts.push(chunk);
      size += chunk.byteLength;
    }
    return join(parts, size).buffer;
  }

  /**
   * All the rest of the body, as one buffer (`text`: decoded as UTF-8, a BOM kept, as workerd's
   * text() does). Fails with BodyTooLargeError, and closes the source, past `capBytes`.
   */
  async readWhole(text: boolean, capBytes: number): Promise<ArrayBuffer | string> {
    const bytes = await this.#readRest(capBytes);
    return text ? new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes) : bytes.buffer;
  }

  async #readRest(capBytes: number): Promise<Uint8Array<ArrayBuffer>> {
    const declared = this.#declared ?? null;
    if (declared !== null && declared > capBytes) {
      await this.#refuse();
      throw new BodyTooLargeError(declared, capBytes);
    }
    // With a declared length the chunks are copied into the final buffer as they come; without
    // one (or past it: the source did not keep its word), they are kept and joined at the end.
    let filled = declared === null ? undefined : unfilled(declared);
    let size = 0;
    const parts: Uint8Array[] = [];
    for (;;) {
      const chunk = await this.#pull();
      if (chunk === null) break;
      if (filled !== undefined && size + chunk.byteLength <= filled.byteLength) {
        filled.set(chunk, size);
        size += chunk.byteLength;
        continue;
      }
      if (size + chunk.byteLength > capBytes) {
        await this.#refuse();
        throw new BodyTooLargeError(undefined, capBytes);
      }
      if (filled !== undefined) {
        parts.push(filled.subarray(0, size));
        filled = undefined;
      }
      parts.push(chunk);
      size += chunk.byteLength;
    }
    if (filled !== undefined) return size === filled.byteLength ? filled : filled.slice(0, size);
    return join(parts, size);
  }

  async #refuse(): Promise<void> {
    try {
      await this.return();
    } catch {}
  }

  /** The next chunk (an empty one is skipped), or null at the end. */
  async #pull(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#done) return null;
      const ahead = this.#ahead;
      this.#ahead = undefined;
      const chunk = this.#settle(await (ahead ?? this.#source.next()));
      if (chunk === null || chunk.byteLength > 0) return chunk;
    }
  }

  /** The next chunk if the source has it before `turn` is over; else NOT_READY, its read kept for later. */
  async #pullReady(turn: Promise<typeof NOT_READY>): Promise<Uint8Array | null | typeof NOT_READY> {
    const pending = this.#source.next();
    const first = await Promise.race([pending, turn]);
    if (first === NOT_READY) {
      // Its failure, if it fails, is the next read's: not an unhandled rejection meanwhile.
      pending.catch(() => {});
      this.#ahead = pending;
      return NOT_READY;
    }
    return this.#settle(first);
  }

  #settle(result: IteratorResult<Uint8Array>): Uint8Array | null {
    if (result.done) {
      this.#done = true;
      return null;
    }
    const chunk = result.value;
    if (!(chunk instanceof Uint8Array)) {
      this.#done = true;
      throw new TypeError(`a body chunk must be a Uint8Array, not ${chunk === null ? 'null' : typeof chunk}`);
    }
    return chunk;
  }
}

/**
 * A fresh buffer of exactly `size` bytes, not zeroed: every byte of it is written before it
 * leaves here (or only the written part leaves), and zeroing first cost as much as the copy.
 */
function unfilled(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.allocUnsafeSlow(size).buffer);
}

/** `parts` copied into one fresh buffer of exactly `size` bytes, which nothing else holds (so it can move into an isolate). */
function join(parts: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const out = unfilled(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
