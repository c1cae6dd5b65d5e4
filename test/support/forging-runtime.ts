// Loaded into a runtime process (`node --import`) by tests that play one a tenant has taken
// over: a binding call, or an RPC call through a service binding, whose method is 'forge:'
// followed by JSON goes out with the head fields that JSON names (another worker, another
// binding, another chain, arguments of the wrong shape), as a process whose V8 was broken could
// write it on its channel.

import { Channel } from '../../src/supervisor/channel.ts';
import type { MessageName, Payloads } from '../../src/supervisor/messages.ts';

const send = Channel.prototype.send;
Channel.prototype.send = function forging<K extends MessageName>(this: Channel, name: K, id: number, payload: Payloads[K]): void {
  if (name === 'bindingCall' || name === 'serviceCall') {
    const call = payload as Payloads['bindingCall'] | Payloads['serviceCall'];
    if (call.head.method.startsWith('forge:')) {
      const forged = { ...call, head: { ...call.head, ...JSON.parse(call.head.method.slice('forge:'.length)) } };
      return send.call(this, name, id, forged as Payloads[K]);
    }
  }
  return send.call(this, name, id, payload);
};
