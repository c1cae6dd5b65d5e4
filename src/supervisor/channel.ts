// The wire between the control process and one runtime process: a Unix socket pair (the
// child's fd 3) carrying frames of [u32 payload length][u8 message code][u32 id][payload].
// The id is a call's or a request's, chosen by the control process; messages.ts says what each
// code means and how its payload is laid out. Frames written in one tick go out in one write.

import type { Duplex } from 'node:stream';
import { MAX_FRAME_BYTES, MESSAGES, messageOf, ProtocolError, type Message, type MessageName, type Payloads, type Side } from './messages.ts';

const HEADER = 9;
const EMPTY = Buffer.alloc(0);

/**
 * Bytes written and not yet taken by the other side past which it is treated as broken. Bodies
 * are windowed (body-stream.ts), but heads, loads and credits are not: a runtime process that
 * stops reading would otherwise make the control process buffer without end.
 */
export const MAX_UNSENT_BYTES = 2 * MAX_FRAME_BYTES;

/**
 * The most bytes that may wait unsent for a frame that can be refused instead (an RPC call's
 * arguments or result, up to 32 MiB each): such a value is refused, with an error to its caller,
 * well before MAX_UNSENT_BYTES, past which the other side is taken for one that stopped reading
 * and the channel is dropped, and with it every request of a runtime process's tenants. Workers
 * in one process calling with large values at once reached that in a second.
 */
export const MAX_QUEUED_VALUE_BYTES = MAX_UNSENT_BYTES / 2;

export interface ChannelEvents {
  message(message: Message): void;
  /** A frame that breaks the protocol, or the socket failed: the channel is closed. */
  error(error: Error): void;
  /** The other side closed its end. */
  close(): void;
}

export class Channel {
  readonly #socket: Duplex;
  readonly #side: Side;
  readonly #events: ChannelEvents;
  /** The part of a frame's header that came, when a read ended inside it. */
  readonly #head = Buffer.allocUnsafe(HEADER);
  #headBytes = 0;
  /** The payload of the frame being read, once its header came and its payload did not all come with it. */
  #frame: { code: number; id: number; payload: Buffer; filled: number } | undefined;
  #corked = false;
  #closed = false;

  constructor(socket: Duplex, side: Side, events: ChannelEvents) {
    this.#socket = socket;
    this.#side = side;
    this.#events = events;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', (error: Error) => this.#fail(error));
    socket.on('close', () => {
      if (this.#closed) return;
      this.#closed = true;
      events.close();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a frame that carries `bytes` of a value that may be refused can be queued now (MAX_QUEUED_VALUE_BYTES). */
  hasRoomFor(bytes: number): boolean {
    return this.#socket.writableLength + bytes <= MAX_QUEUED_VALUE_BYTES;
  }

  send<K extends MessageName>(name: K, id: number, payload: Payloads[K]): void {
    if (this.#closed) return;
    const declaration = MESSAGES[name];
    let body: Buffer;
    let tail: Buffer = EMPTY;
    switch (declaration.layout) {
      case 'json':
        body = Buffer.from(JSON.stringify(payload));
        break;
      case 'bytes': {
        const bytes = payload as Uint8Array;
        body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        break;
      }
      case 'count':
        body = Buffer.allocUnsafe(4);
        body.writeUInt32LE(payload as number, 0);
        break;
      case 'head+bytes': {
        // Written as two pieces (one writev, corked): the bytes (an RPC value of megabytes) are
        // never copied into a joined buffer on this thread.
        const { head, body: bytes } = payload as { head: unknown; body: Uint8Array };
        const json = Buffer.from(JSON.stringify(head));
        const prefix = Buffer.allocUnsafe(4 + json.byteLength);
        prefix.writeUInt32LE(json.byteLength, 0);
        json.copy(prefix, 4);
        body = prefix;
        tail = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        break;
      }
      case 'none':
        body = EMPTY;
    }
    const header = Buffer.allocUnsafe(HEADER);
    header.writeUInt32LE(body.byteLength + tail.byteLength, 0);
    header.writeUInt8(declaration.code, 4);
    header.writeUInt32LE(id >>> 0, 5);
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(header);
    if (body.byteLength > 0) this.#socket.write(body);
    if (tail.byteLength > 0) this.#socket.write(tail);
    const unsent = this.#socket.writableLength;
    if (unsent > MAX_UNSENT_BYTES) this.#fail(new ProtocolError(`the other side stopped reading: ${unsent} bytes unsent, more than the ${MAX_UNSENT_BYTES} allowed`));
  }

  /** Sends what is written, then closes this side; `done` runs once it is flushed. */
  end(done: () => void): void {
    if (this.#closed) return done();
    this.#closed = true;
    this.#socket.end(done);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
  }

  /**
   * A large frame's payload is copied into a buffer of its own piece by piece, as each read brings
   * it, not joined in one go once it is whole: a frame of tens of megabytes (an RPC value) joined
   * at once held this thread, which serves every tenant, for tens of milliseconds in one stretch.
   */
  #read(chunk: Buffer): void {
    let at = 0;
    while (!this.#closed && at < chunk.byteLength) {
      const frame = this.#frame;
      if (frame !== undefined) {
        const n = Math.min(chunk.byteLength - at, frame.payload.byteLength - frame.filled);
        chunk.copy(frame.payload, frame.filled, at, at + n);
        frame.filled += n;
        at += n;
        if (frame.filled < frame.payload.byteLength) return;
        this.#frame = undefined;
        this.#deliver(frame.code, frame.id, frame.payload);
        continue;
      }
      let head: Buffer;
      if (this.#headBytes === 0 && chunk.byteLength - at >= HEADER) {
        head = chunk.subarray(at, at + HEADER);
        at += HEADER;
      } else {
        const n = Math.min(HEADER - this.#headBytes, chunk.byteLength - at);
        chunk.copy(this.#head, this.#headBytes, at, at + n);
        this.#headBytes += n;
        at += n;
        if (this.#headBytes < HEADER) return;
        this.#headBytes = 0;
        head = this.#head;
      }
      const length = head.readUInt32LE(0);
      if (length > MAX_FRAME_BYTES) return this.#fail(new ProtocolError(`a frame of ${length} bytes, more than the ${MAX_FRAME_BYTES} allowed`));
      const code = head.readUInt8(4);
      const id = head.readUInt32LE(5);
      if (chunk.byteLength - at >= length) {
        const payload = chunk.subarray(at, at + length);
        at += length;
        this.#deliver(code, id, payload);
      } else {
        this.#frame = { code, id, payload: Buffer.allocUnsafe(length), filled: 0 };
      }
    }
  }

  /** A frame that does not decode, or that its handler finds breaks the protocol (a body past its window), closes the channel rather than throwing into the socket's event. */
  #deliver(code: number, id: number, payload: Buffer): void {
    try {
      this.#events.message(this.#decode(code, id, payload));
    } catch (error) {
      this.#fail(error instanceof Error ? error : new ProtocolError(String(error)));
    }
  }

  #decode(code: number, id: number, payload: Buffer): Message {
    const name = messageOf(code, this.#side);
    if (name === undefined) throw new ProtocolError(`unknown message code ${code}`);
    const declaration = MESSAGES[name];
    let value: unknown;
    switch (declaration.layout) {
      case 'json':
        value = JSON.parse(payload.toString('utf8'));
        break;
      case 'bytes':
        value = payload;
        break;
      case 'count':
        if (payload.byteLength !== 4) throw new ProtocolError('a credit frame is 4 bytes');
        value = payload.readUInt32LE(0);
        break;
      case 'head+bytes': {
        if (payload.byteLength < 4) throw new ProtocolError('a short head+bytes frame');
        const headLength = payload.readUInt32LE(0);
        if (4 + headLength > payload.byteLength) throw new ProtocolError('a head past its frame');
        if (headLength > (declaration.maxHeadBytes ?? MAX_FRAME_BYTES)) throw new ProtocolError(`a ${name} head of ${headLength} bytes, more than the ${declaration.maxHeadBytes} allowed`);
        value = { head: JSON.parse(payload.toString('utf8', 4, 4 + headLength)), body: payload.subarray(4 + headLength) };
        break;
      }
      case 'none':
        if (payload.byteLength !== 0) throw new ProtocolError(`${name} carries no payload`);
        value = undefined;
    }
    return { name, id, payload: declaration.check(value) } as Message;
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#events.error(error);
  }
}
