// A running `isolet ...` CLI process with its output collected, for the CLI's tests: waits are
// for output, never for time.

import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

const BIN = join(resolve(import.meta.dirname, '..', '..'), 'bin', 'isolet.js');

/** A running `isolet ...` with its output collected; ISOLET_API* come only from `options.env`. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  #waiters = new Set<() => void>();

  constructor(args: string[], options: { cwd: string; env?: Record<string, string | undefined>; stdin?: string }) {
    const env: Record<string, string | undefined> = { ...process.env, ISOLET_API: undefined, ISOLET_API_TOKEN: undefined, ...options.env };
    for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
    this.child = spawn(process.execPath, ['--no-node-snapshot', BIN, ...args], { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin!.end(options.stdin ?? '');
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.#notify();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#notify();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code) => {
        this.#notify();
        resolve(code);
      });
    });
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(this[stream]);
        if (match) {
          this.#waiters.delete(check);
          resolve(match);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.#waiters.delete(check);
          reject(new Error(`isolet exited before ${stream} matched ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
        }
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Ends the process if it still runs (cleanup after a failed test). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
