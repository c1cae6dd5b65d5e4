// The control process's side of the service calls one runtime process's workers make: each
// request arrives as a head and windowed body frames (as the front sends requests the other
// way), goes to the ServiceRouter, and its response streams back with credit; an RPC call is
// one message each way, its arguments and result passed on as the bytes they came in (the
// control process never reads tenant data). When the process ends, every call it made is
// cancelled: the called workers see their client leave.

import type { RuntimeRequest, RuntimeResponse, ServiceCall } from '../runtime/types.ts';
import { IncomingBody, OutgoingBody } from './body-stream.ts';
import { queuedTooMuch, WHOLE_BODY_BYTES, type CallOutcome, type Message, type Payloads, type ServiceCaller } from './messages.ts';
import type { Channel } from './channel.ts';

/**
 * Where a runtime process's service calls go, once its slot has resolved the caller and the
 * binding against what it sent that process: the pool finds and checks the target (process-pool.ts).
 */
export interface ServiceRouter {
  fetch(call: ServiceCall, request: RuntimeRequest): Promise<RuntimeResponse>;
  /** `args` and the result's body are RPC values as bytes (rpc-values.ts), passed through. */
  call(call: ServiceCall, method: string, args: Uint8Array): Promise<CallOutcome>;
}

/** The call a runtime process's message describes, resolved by its slot; a BindingError when it resolves to nothing. */
export type ResolveCaller = (caller: ServiceCaller) => ServiceCall;

interface Exchange {
  controller: AbortController;
  body: IncomingBody | null;
  response: OutgoingBody | undefined;
}

export class ServiceExchanges {
  readonly #channel: Pick<Channel, 'send' | 'hasRoomFor'>;
  readonly #resolve: ResolveCaller;
  readonly #router: ServiceRouter;
  readonly #exchanges = new Map<number, Exchange>();
  #closed = false;

  constructor(channel: Pick<Channel, 'send' | 'hasRoomFor'>, resolve: ResolveCaller, router: ServiceRouter) {
    this.#channel = channel;
    this.#resolve = resolve;
    this.#router = router;
  }

  /** Handles a service message of the runtime process; false if `message` is none. */
  receive(message: Message): boolean {
    switch (message.name) {
      case 'serviceRequest':
        this.#fetch(message.id, message.payload);
        return true;
      case 'serviceRequestBody':
        this.#exchanges.get(message.id)?.body?.push(message.payload);
        return true;
      case 'serviceRequestEnd':
        this.#exchanges.get(message.id)?.body?.end();
        return true;
      case 'serviceRequestAbort': {
        const exchange = this.#exchanges.get(message.id);
        exchange?.controller.abort();
        exchange?.body?.fail(new Error('The calling worker cancelled the request.'));
        exchange?.response?.cancel();
        return true;
      }
      case 'serviceResponseCredit':
        this.#exchanges.get(message.id)?.response?.credit(message.payload);
        return true;
      case 'serviceResponseCancel':
        this.#exchanges.get(message.id)?.response?.cancel();
        return true;
      case 'serviceCall':
        this.#call(message.id, message.payload.head, message.payload.body);
        return true;
      default:
        return false;
    }
  }

  /** The runtime process ended: its calls are cancelled. */
  close(): void {
    this.#closed = true;
    for (const exchange of this.#exchanges.values()) {
      exchange.controller.abort();
      exchange.body?.fail(new Error('The calling worker\'s runtime process ended.'));
      exchange.response?.cancel();
    }
    this.#exchanges.clear();
  }

  #fetch(id: number, head: Payloads['serviceRequest']): void {
    if (this.#closed) return;
    const controller = new AbortController();
    const body = head.body ? new IncomingBody((bytes) => this.#channel.send('serviceRequestCredit', id, bytes), () => {}) : null;
    const exchange: Exchange = { controller, body, response: undefined };
    this.#exchanges.set(id, exchange);
    Promise.resolve()
      .then(() => this.#router.fetch(this.#resolve(head), { method: head.method, url: head.url, headers: head.headers, body, signal: controller.signal }))
      .then((response) => this.#respond(id, exchange, response))
      .catch((error: unknown) => this.#channel.send('serviceResponseError', id, wireError(error)))
      .finally(() => {
        if (this.#exchanges.get(id) === exchange) this.#exchanges.delete(id);
      });
  }

  async #respond(id: number, exchange: Exchange, response: RuntimeResponse): Promise<void> {
    const { status, statusText, headers, body } = response;
    if (exchange.controller.signal.aborted) {
      if (body !== null && !(body instanceof Uint8Array)) void body[Symbol.asyncIterator]().return?.();
      return;
    }
    if (body === null || (body instanceof Uint8Array && body.byteLength === 0)) {
      this.#channel.send('serviceResponse', id, { status, statusText, headers, stream: false });
      return;
    }
    if (body instanceof Uint8Array && body.byteLength <= WHOLE_BODY_BYTES) {
      this.#channel.send('serviceResponseWhole', id, { head: { status, statusText, headers, stream: false }, body });
      return;
    }
    this.#channel.send('serviceResponse', id, { status, statusText, headers, stream: true });
    const outgoing = new OutgoingBody((chunk) => this.#channel.send('serviceResponseBody', id, chunk));
    exchange.response = outgoing;
    if (await outgoing.pump(body)) this.#channel.send('serviceResponseEnd', id, undefined);
  }

  #call(id: number, head: Payloads['serviceCall']['head'], args: Uint8Array): void {
    if (this.#closed) return;
    const failed = (error: unknown) => this.#channel.send('serviceCallResult', id, { head: { ok: false, ...wireError(error) }, body: new Uint8Array(0) });
    Promise.resolve().then(() => this.#router.call(this.#resolve(head), head.method, args)).then(
      (outcome) => this.#channel.hasRoomFor(outcome.body.byteLength) ? this.#channel.send('serviceCallResult', id, outcome) : failed(queuedTooMuch()),
      failed,
    );
  }
}

/** An error as the calling worker sees it: its name and message, nothing else of it. */
function wireError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name.slice(0, 128), message: error.message.slice(0, 16 * 1024) };
  return { name: 'Error', message: String(error).slice(0, 16 * 1024) };
}
