// A fatal V8 error (isolated-vm's onCatastrophicError) is logged with the worker's name, then
// the process exits with a status a supervisor recognises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catastrophicErrorHandler, CATASTROPHIC_EXIT_CODE } from '../src/runtime/catastrophe.ts';

test('onCatastrophicError logs the worker and exits with the catastrophic status', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'isolet-')), 'log');
  const fd = openSync(file, 'w');
  let exitedWith: number | undefined;
  const handler = catastrophicErrorHandler((code) => {
    exitedWith = code;
    throw new Error('exit');
  }, fd);
  assert.throws(() => handler('tenant-a', 'Check failed: heap corrupted'), /exit/);
  closeSync(fd);
  assert.equal(exitedWith, CATASTROPHIC_EXIT_CODE);
  const line = JSON.parse(readFileSync(file, 'utf8').trim());
  assert.equal(line.level, 'fatal');
  assert.equal(line.worker, 'tenant-a');
  assert.match(line.message, /tenant-a.*Check failed: heap corrupted.*status 70/);
});
