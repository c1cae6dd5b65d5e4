// The wall's contract (src/bridge/protocol.ts): the sandbox offers exactly the entry points the
// host takes, and every host call checks its arguments against the declared types before the
// host acts, whatever calls it (tenant code that took over the sandbox runtime included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ivm from 'isolated-vm';
import { ENTRIES_GLOBAL, ENTRY_NAMES, HOST_CALL_ORDER, HOST_CALLS_EXTERNAL_FROM, type HostCalls } from '../src/bridge/protocol.ts';
import { isolatedVmBuild } from '../src/runtime/native-build.ts';
import { OPERATION_MODES } from '../src/bridge/operations.ts';
import { operations } from '../src/runtime/host-ops.ts';
import { hostCallbacks } from '../src/runtime/host-callbacks.ts';
import { runtimeImage } from '../src/runtime/runtime-image.ts';

test('a new context offers exactly the entry points the protocol declares', async () => {
  const image = await runtimeImage();
  const isolate = new ivm.Isolate({ snapshot: image.snapshot, memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    const names = context.evalSync(`Object.keys(globalThis[${JSON.stringify(ENTRIES_GLOBAL)}]).sort().join()`);
    assert.equal(names, [...ENTRY_NAMES].sort().join());
  } finally {
    isolate.dispose();
  }
});

test('the host implements every declared operation, each in its declared mode', () => {
  assert.deepEqual(Object.keys(operations).sort(), Object.keys(OPERATION_MODES).sort());
  for (const [name, mode] of Object.entries(OPERATION_MODES)) {
    assert.equal(typeof operations[name as keyof typeof operations], 'function', name);
    assert.ok(mode === 'sync' || mode === 'async');
  }
});

test('host calls with arguments of the wrong type are dropped (post) or refused (wait), never acted on', async () => {
  const seen: string[] = [];
  const record = (name: string) => (...args: unknown[]) => {
    seen.push(`${name}(${args.map((a) => JSON.stringify(a)).join(',')})`);
    return name === 'sync' ? 'answer' : undefined;
  };
  const calls = Object.fromEntries(HOST_CALL_ORDER.map((name) => [name, record(name)])) as unknown as HostCalls;
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    const callbacks = hostCallbacks(calls);
    await context.evalClosure(
      `const names = ${JSON.stringify(HOST_CALL_ORDER)};
       for (let i = 0; i < names.length; i++) globalThis[names[i]] = arguments[i];`,
      callbacks as never[],
    );
    const result = await context.eval(`
      log('info', 'fine');
      log(5, 'a number for a level');
      uncaught('1', 'a string id');
      startTimer(1, 2, 3);
      startTimer(1, 2, '3');
      respond(1, { status: 200, statusText: 'OK', headers: ['a'], body: null });
      respond(1, { status: 200, statusText: 'OK', headers: ['a', 'b'], body: { stream: true, length: 'big', requestBody: false } });
      respond(1, { error: 'boom', kind: 'exception' });
      respondSimple(1, 200, 'OK', '', new Uint8Array(1), true);
      respondSimple(1, 200, 'OK', '', {}, true);
      let refused = '';
      try { sync(7, []); } catch (error) { refused = error.name + ': ' + error.message; }
      const answered = sync('op', [1]);
      answered + ' | ' + refused;
    `);
    assert.equal(result, 'answer | TypeError: Host call sync: argument 1 is not what the protocol declares.');
    // Post calls reach the host's thread a turn later.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(seen.sort(), [
      'log("info","fine")',
      'respond(1,{"error":"boom","kind":"exception"})',
      'respondSimple(1,200,"OK","",{"0":0},true)',
      'startTimer(1,2,3)',
      'sync("op",[1])',
    ]);
  } finally {
    isolate.dispose();
  }
});

test('the values a host call hands on cross as ExternalCopy handles on isolet\'s build, never read on the host\'s thread', async () => {
  const seen: unknown[][] = [];
  const calls = Object.fromEntries(HOST_CALL_ORDER.map((name) => [name, (...args: unknown[]) => {
    seen.push([name, ...args]);
  }])) as unknown as HostCalls;
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    await context.evalClosure(
      `const names = ${JSON.stringify(HOST_CALL_ORDER)};
       for (let i = 0; i < names.length; i++) globalThis[names[i]] = arguments[i];`,
      hostCallbacks(calls) as never[],
    );
    await context.eval(`
      const value = { list: [1, 2], text: 'x'.repeat(100000) };
      const bytes = new Uint8Array(1 << 20);
      bytes[5] = 5;
      asyncValues(1, 2, 'binding.call', ['STORE', 'put'], value, bytes);
      value.list.push(3);
      bytes[5] = 6;
      asyncValues(4, 2, 'binding.call', ['STORE', 'list']);
      respondCall(3, true, '', false, new Map([['k', 1]]));
      // respondCall hands on one value: with another, or with a wrong argument before it, it is dropped.
      respondCall(3, true, '', false, 1, 'extra');
      respondCall(3, 'not a boolean', '', false, 1);
      asyncValues('1', 2, 'binding.call', ['STORE', 'put'], value);
    `);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(seen.map((call) => call[0]), ['asyncValues', 'asyncValues', 'respondCall']);
    const [, callId, requestId, op, args, carried, carriedBytes] = seen[0]!;
    assert.deepEqual([callId, requestId, op, args], [1, 2, 'binding.call', ['STORE', 'put']]);
    assert.deepEqual(seen[1], ['asyncValues', 4, 2, 'binding.call', ['STORE', 'list']]);
    const result = seen[2]![5];
    assert.deepEqual(HOST_CALLS_EXTERNAL_FROM, { asyncValues: 4, respondCall: 4 });
    if (isolatedVmBuild().patched) {
      assert.ok(carried instanceof ivm.ExternalCopy && carriedBytes instanceof ivm.ExternalCopy && result instanceof ivm.ExternalCopy);
      // Copied when the call was made: what changed after it is not in it.
      const copy = carried.copy() as { list: number[]; text: string };
      assert.deepEqual(copy.list, [1, 2]);
      assert.equal(copy.text.length, 100000);
      const moved = carriedBytes.copy({ transferIn: true }) as Uint8Array;
      assert.ok(moved instanceof Uint8Array && moved.byteLength === 1 << 20 && moved[5] === 5);
      assert.deepEqual([...(result.copy() as Map<string, number>)], [['k', 1]]);
    } else {
      // A stock build ignores the option: the values arrive as copies.
      assert.deepEqual((carried as { list: number[] }).list, [1, 2]);
      assert.equal((carriedBytes as Uint8Array)[5], 5);
      assert.ok(result instanceof Map);
    }
  } finally {
    isolate.dispose();
  }
});
