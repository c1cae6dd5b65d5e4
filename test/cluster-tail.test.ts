// ClusterTail on its own, over a store that only carries broadcasts: what crosses between nodes
// is only what another node tails, every broadcast fits PostgreSQL's NOTIFY, and a flood is cut
// with every entry either delivered or counted in a line that says so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterTail } from '../src/server/cluster-tail.ts';
import { LogBus } from '../src/server/log-bus.ts';
import { BROADCAST_MAX_BYTES, type SharedStore } from '../src/store/store.ts';
import type { WorkerLogEntry } from '../src/runtime/types.ts';

/** Two nodes' broadcasts over one fake channel that delivers to both, as NOTIFY does. */
function pair() {
  const receivers: ((message: string) => void)[] = [];
  const sent: string[] = [];
  const store = {
    async broadcast(message: string) {
      assert.ok(Buffer.byteLength(message) <= BROADCAST_MAX_BYTES, `a broadcast of ${Buffer.byteLength(message)} bytes`);
      sent.push(message);
      for (const receive of receivers) setImmediate(receive, message);
    },
    onBroadcast(receive: (message: string) => void) {
      receivers.push(receive);
    },
  } as unknown as SharedStore;
  const log = () => {};
  const busA = new LogBus({ watched: (worker) => tailA.watched(worker) });
  const busB = new LogBus({ watched: (worker) => tailB.watched(worker) });
  const tailA: ClusterTail = new ClusterTail({ store, bus: busA, node: 'a', instance: 'A', log });
  const tailB: ClusterTail = new ClusterTail({ store, bus: busB, node: 'b', instance: 'B', log });
  const deliver = (message: string) => receivers.forEach((receive) => receive(message));
  return { sent, deliver, busA, busB, tailA, tailB, close: () => (tailA.close(), tailB.close()) };
}

function entry(worker: string, message: string): WorkerLogEntry {
  return { time: new Date().toISOString(), worker, level: 'log', type: 'console', message };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 100));

test('only the entries of workers tailed on another node cross, once, naming their node', async () => {
  const { sent, busA, tailB, close } = pair();
  try {
    const got: WorkerLogEntry[] = [];
    busA.subscribe('watched', { write: (line) => (got.push(JSON.parse(line)), true), drop: () => {} });
    await tick();
    tailB.local(entry('watched', 'one'));
    tailB.local(entry('other', 'nobody tails this'));
    await tick();
    assert.deepEqual(got.map((e) => [e.message, e.node]), [['one', 'b']]);
    assert.ok(!sent.some((message) => message.includes('nobody tails this')));
  } finally {
    close();
  }
});

test('a flood is bounded: every entry is delivered or counted, and each broadcast fits NOTIFY', { timeout: 60_000 }, async () => {
  const { sent, busA, tailB, close } = pair();
  try {
    const got: WorkerLogEntry[] = [];
    busA.subscribe('noisy', { write: (line) => (got.push(JSON.parse(line)), true), drop: () => {} });
    await tick();
    const total = 4000;
    for (let i = 0; i < total; i++) tailB.local(entry('noisy', `line ${i} ${'é'.repeat(300)}`));
    const counted = () => got.filter((e) => e.type === 'lifecycle').reduce((sum, e) => sum + Number(e.dropped), 0);
    const deadline = Date.now() + 30_000;
    while (got.filter((e) => e.type === 'console').length + counted() < total) {
      assert.ok(Date.now() < deadline, `${got.length} entries and ${counted()} counted`);
      await tick();
    }
    const lines = got.filter((e) => e.type === 'console');
    assert.ok(counted() > 0, 'more than the queue holds was sent at once');
    assert.equal(lines.length + counted(), total);
    // The entries that crossed kept their order and their text.
    const numbers = lines.map((e) => Number(e.message.split(' ')[1]));
    assert.deepEqual(numbers, [...numbers].sort((x, y) => x - y));
    assert.ok(lines.every((e) => e.message.endsWith('é'.repeat(300))));
    assert.match(got.find((e) => e.type === 'lifecycle')!.message, /did not reach this tail/);
    assert.ok(sent.length > 1);
  } finally {
    close();
  }
});

test('a node ignores its own broadcasts, and anything that is not one', async () => {
  const { deliver, busA, busB, tailA, close } = pair();
  try {
    const onA: WorkerLogEntry[] = [];
    const onB: WorkerLogEntry[] = [];
    busA.subscribe('w', { write: (line) => (onA.push(JSON.parse(line)), true), drop: () => {} });
    busB.subscribe('w', { write: (line) => (onB.push(JSON.parse(line)), true), drop: () => {} });
    await tick();
    // A's entry reaches B's tail; A's own tail has it from its own bus, not back from the channel.
    tailA.local(entry('w', 'from a'));
    await tick();
    assert.deepEqual(onB.map((e) => e.message), ['from a']);
    assert.equal(onA.length, 0);
    for (const junk of ['', 'null', '[]', '{"from":"X","entries":[{"worker":"w"}]}', '{"from":"X","entries":[null, 7]}', '{"from":"X","watching":[1,{}]}', '{']) deliver(junk);
    deliver(JSON.stringify({ from: 'X', node: 'x', entries: [entry('w', 'well formed')] }));
    assert.deepEqual(onA.map((e) => e.message), ['well formed']);
  } finally {
    close();
  }
});

test('a node that cannot share its lines says so once, with why, and once when it can again', async () => {
  const lines: [string, string, Record<string, unknown> | undefined][] = [];
  let up = false;
  const store = {
    broadcast: async () => {
      if (!up) throw new Error('database away');
    },
    onBroadcast() {},
  } as unknown as SharedStore;
  const bus = new LogBus();
  const tail = new ClusterTail({ store, bus, node: 'a', instance: 'A', log: (level, _type, message, fields) => lines.push([level, message, fields]) });
  try {
    for (let i = 0; i < 3; i++) tail.watched(`w${i}`);
    await tick();
    up = true;
    tail.watched('w');
    tail.watched('w');
    await tick();
    assert.deepEqual(lines.map(([level, , fields]) => [level, fields?.reason]), [['warn', 'database away'], ['info', undefined]]);
    assert.match(lines[0]![1], /could not share log lines with the other nodes/);
  } finally {
    tail.close();
  }
});
