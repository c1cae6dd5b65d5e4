// An error a waiting host call (`sync`, `loadModule`) throws reaches sandbox and tenant code as an
// error made again in the isolate's realm (src/sandbox/host-calls.ts): same kind, name and
// message, read without running a getter; the copy isolated-vm handed over, whose `stack` renders
// the host's side of the call, goes no further.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callSync, connectHost, createModule } from '../src/sandbox/host-calls.ts';
import type { HostCalls } from '../src/bridge/protocol.ts';

/** An error as isolated-vm hands it over, whose every accessor records that it was read. */
function crossed<E extends Error>(error: E, read: string[]): E {
  Object.defineProperty(error, 'stack', { get: () => (read.push('stack'), 'host frames'), configurable: true });
  return error;
}

function throwing(error: unknown): void {
  connectHost({ log() {}, uncaught() {}, sync() { throw error; }, loadModule() { throw error; } } as unknown as HostCalls);
}

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  assert.fail('nothing was thrown');
}

test('a synchronous host operation\'s error is made again here, of the same kind, without reading its stack', () => {
  for (const Type of [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, Error]) {
    const read: string[] = [];
    const original = crossed(new Type('what went wrong'), read);
    throwing(original);
    const error = thrownBy(() => callSync('crypto.randomBytes', 4)) as Error;
    assert.notEqual(error, original);
    assert.equal(Object.getPrototypeOf(error), Type.prototype, Type.name);
    assert.equal(error.message, 'what went wrong');
    assert.doesNotMatch(String(error.stack), /host frames/);
    assert.deepEqual(read, []);
  }
});

test('an error of its own name keeps the name; accessors on what crossed are never run', () => {
  const read: string[] = [];
  const named = crossed(new Error('too many bytes'), read);
  Object.defineProperty(named, 'name', { value: 'QuotaExceededError', writable: true, enumerable: false, configurable: true });
  throwing(named);
  const error = thrownBy(() => callSync('crypto.randomBytes', 4)) as Error;
  assert.equal(error.name, 'QuotaExceededError');
  assert.equal(error.message, 'too many bytes');
  assert.ok(error instanceof Error);

  const sly = crossed(new TypeError('x'), read);
  Object.defineProperty(sly, 'message', { get: () => (read.push('message'), 'from a getter'), configurable: true });
  Object.defineProperty(sly, 'name', { get: () => (read.push('name'), 'Evil'), configurable: true });
  throwing(sly);
  const made = thrownBy(() => callSync('crypto.randomBytes', 4)) as Error;
  assert.equal(Object.getPrototypeOf(made), TypeError.prototype);
  assert.equal(made.message, '');
  assert.deepEqual(read, []);
});

test('a value that is not an object is thrown on as it is; so is a module that could not be loaded, made again', () => {
  throwing('a string');
  assert.equal(thrownBy(() => callSync('crypto.randomBytes', 4)), 'a string');
  const read: string[] = [];
  const original = crossed(new TypeError('Invalid property descriptor'), read);
  throwing(original);
  const error = thrownBy(() => createModule('no-such-module', {})) as Error;
  assert.notEqual(error, original);
  assert.equal(Object.getPrototypeOf(error), TypeError.prototype);
  assert.equal(error.message, 'Invalid property descriptor');
  assert.deepEqual(read, []);
});
