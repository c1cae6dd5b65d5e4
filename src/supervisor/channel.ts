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
  /** The start of a frame not yet whole, and the pieces that came after it. */
  #pending: Buffer = EMPTY;
  #parts: Buffer[] = [];
  #partsBytes = 0;
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

  send<K extends MessageName>(name: K, id: number, payload: Payloads[K]): void {
    if (this.#closed) return;
    const declaration = MESSAGES[name];
    let body: Buffer;
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
        const { head, body: bytes } = payload as { head: unknown; body: Uint8Array };
        const json = Buffer.from(JSON.stringify(head));
        const length = Buffer.allocUnsafe(4);
        length.writeUInt32LE(json.byteLength, 0);
        body = Buffer.concat([length, json, bytes]);
        break;
      }
      case 'none':
        body = EMPTY;
    }
    const header = Buffer.allocUnsafe(HEADER);
    header.writeUInt32LE(body.byteLength, 0);
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

  #read(chunk: Buffer): void {
    // A frame that arrives in many pieces is joined once, when it is whole, not once per piece.
    if (this.#pending.byteLength > 0 || this.#parts.length > 0) {
      this.#parts.push(chunk);
      this.#partsBytes += chunk.byteLength;
      if (this.#partsBytes < this.#missing()) return;
      chunk = Buffer.concat([this.#pending, ...this.#parts], this.#pending.byteLength + this.#partsBytes);
      this.#parts = [];
      this.#partsBytes = 0;
      this.#pending = EMPTY;
    }
    let buffer = chunk;
    while (!this.#closed && buffer.byteLength >= HEADER) {
      const length = buffer.readUInt32LE(0);
      if (length > MAX_FRAME_BYTES) return this.#fail(new ProtocolError(`a frame of ${length} bytes, more than the ${MAX_FRAME_BYTES} allowed`));
      if (buffer.byteLength < HEADER + length) break;
      const code = buffer.readUInt8(4);
      const id = buffer.readUInt32LE(5);
      const payload = buffer.subarray(HEADER, HEADER + length);
      buffer = buffer.subarray(HEADER + length);
      // A frame that does not decode, or that its handler finds breaks the protocol (a body past
      // its window), closes the channel rather than throwing into the socket's event.
      try {
        this.#events.message(this.#decode(code, id, payload));
      } catch (error) {
        return this.#fail(error instanceof Error ? error : new ProtocolError(String(error)));
      }
    }
    this.#pending = buffer.byteLength === 0 ? EMPTY : Buffer.from(buffer);
  }

  /** Bytes still to come before the pending frame (or its header) is whole. */
  #missing(): number {
    const pending = this.#pending;
    return pending.byteLength < HEADER ? HEADER - pending.byteLength : HEADER + pending.readUInt32LE(0) - pending.byteLength;
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
