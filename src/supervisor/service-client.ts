// A runtime process's ServiceHost: its workers' service-binding calls go to the control process,
// which alone decides where they go (src/supervisor/service-router.ts). A request is sent as the
// front's are, the other way round: its head, its body in windowed frames, and its response
// streamed back with credit; an RPC call is one message each way. Only the caller's name, the
// binding's name and the chain cross: what the binding names is the control process's to know.

import { BindingError, type RuntimeRequest, type RuntimeResponse, type ServiceCall, type ServiceHost } from '../runtime/types.ts';
import { IncomingBody, OutgoingBody } from './body-stream.ts';
import type { Channel } from './channel.ts';
import { queuedTooMuch, type Message } from './messages.ts';
import { decodeRpcValue, encodeRpcValue } from './rpc-values.ts';
import { RpcValue } from '../runtime/rpc-value.ts';

interface Pending {
  resolve(value: RuntimeResponse): void;
  reject(error: Error): void;
  answered: boolean;
  requestBody: OutgoingBody | undefined;
  responseBody: IncomingBody | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class ServiceClient implements ServiceHost {
  readonly #channel: Channel;
  readonly #fetches = new Map<number, Pending>();
  readonly #calls = new Map<number, { resolve(value: RpcValue): void; reject(error: Error): void }>();
  #nextId = 1;

  constructor(channel: Channel) {
    this.#channel = channel;
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  fetch(call: ServiceCall, request: RuntimeRequest): Promise<RuntimeResponse> {
    return new Promise((resolve, reject) => {
      const id = this.#id();
      const body = request.body ?? null;
      const pending: Pending = { resolve, reject, answered: false, requestBody: undefined, responseBody: undefined, signal: request.signal, onAbort: undefined };
      this.#fetches.set(id, pending);
      const headers = Array.isArray(request.headers) ? (request.headers as [string, string][]) : [...request.headers];
      this.#channel.send('serviceRequest', id, {
        worker: call.worker, binding: call.name, chain: [...call.chain], method: request.method, url: request.url, headers, body: body !== null,
      });
      if (request.signal !== undefined) {
        pending.onAbort = () => {
          this.#channel.send('serviceRequestAbort', id, undefined);
          pending.requestBody?.cancel();
          pending.responseBody?.fail(new Error('The service call was cancelled.'));
          this.#finish(id);
          if (!pending.answered) reject(new BindingError('Error', 'The service call was cancelled.'));
        };
        if (request.signal.aborted) return pending.onAbort();
        request.signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      if (body !== null) {
        const outgoing = new OutgoingBody((chunk) => this.#channel.send('serviceRequestBody', id, chunk));
        pending.requestBody = outgoing;
        outgoing.pump(body).then(
          (whole) => {
            if (whole) this.#channel.send('serviceRequestEnd', id, undefined);
          },
          () => this.#channel.send('serviceRequestAbort', id, undefined),
        );
      }
    });
  }

  /** The arguments and the result cross processes as bytes (rpc-values.ts), unread on isolet's isolated-vm. */
  call(call: ServiceCall, method: string, args: RpcValue): Promise<RpcValue> {
    let body: Uint8Array;
    try {
      body = encodeRpcValue(args);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!this.#channel.hasRoomFor(body.byteLength)) return Promise.reject(queuedTooMuch());
    return new Promise((resolve, reject) => {
      const id = this.#id();
      this.#calls.set(id, { resolve, reject });
      this.#channel.send('serviceCall', id, { head: { worker: call.worker, binding: call.name, chain: [...call.chain], method }, body });
    });
  }

  /** A message of the control process about one of this client's calls. */
  receive(message: Message): void {
    switch (message.name) {
      case 'serviceResponse':
      case 'serviceResponseWhole': {
        const pending = this.#fetches.get(message.id);
        if (pending === undefined || pending.answered) return;
        pending.answered = true;
        const head = message.name === 'serviceResponse' ? message.payload : message.payload.head;
        let body: RuntimeResponse['body'] = null;
        if (message.name === 'serviceResponseWhole') body = message.payload.body;
        else if (head.stream) {
          const id = message.id;
          pending.responseBody = new IncomingBody(
            (bytes) => this.#channel.send('serviceResponseCredit', id, bytes),
            () => {
              this.#channel.send('serviceResponseCancel', id, undefined);
              this.#finish(id);
            },
          );
          body = pending.responseBody;
        }
        if (body === null || body instanceof Uint8Array) this.#finish(message.id);
        pending.resolve({ status: head.status, statusText: head.statusText, headers: head.headers, body });
        return;
      }
      case 'serviceResponseBody':
        return this.#fetches.get(message.id)?.responseBody?.push(message.payload);
      case 'serviceResponseEnd':
        this.#fetches.get(message.id)?.responseBody?.end();
        return this.#finish(message.id);
      case 'serviceResponseError': {
        const pending = this.#fetches.get(message.id);
        if (pending === undefined) return;
        this.#finish(message.id);
        const error = new BindingError(message.payload.name, message.payload.message);
        if (pending.answered) pending.responseBody?.fail(error);
        else pending.reject(error);
        return;
      }
      case 'serviceRequestCredit':
        return this.#fetches.get(message.id)?.requestBody?.credit(message.payload);
      case 'serviceCallResult': {
        const call = this.#calls.get(message.id);
        if (call === undefined) return;
        this.#calls.delete(message.id);
        const { head, body } = message.payload;
        if (!head.ok) return call.reject(new BindingError(head.name, head.message));
        try {
          call.resolve(decodeRpcValue(body));
        } catch (error) {
          call.reject(new BindingError('DataCloneError', `The result could not be read: ${(error as Error).message}`));
        }
        return;
      }
    }
  }

  #finish(id: number): void {
    const pending = this.#fetches.get(id);
    if (pending === undefined) return;
    this.#fetches.delete(id);
    pending.requestBody?.cancel();
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort);
  }
}
