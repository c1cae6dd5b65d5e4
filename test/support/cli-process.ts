// `node bin/isolet.js ...` as a child process with its output collected, for every test that runs
// the CLI (dev, serve, the API commands): waits are for output or an exit, never for time.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'isolet.js');

export interface CliProcessOptions {
  /** Working directory (default: the repository). */
  cwd?: string;
  /** Over the test's environment; undefined removes a variable. ISOLET_API* come only from here. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (default: nothing). */
  stdin?: string;
}

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How long waitFor waits for a line before it fails with the output so far. */
const WAIT_FOR_MS = 90_000;

export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  /** Resolves once the process has exited and its output is read to the end. */
  readonly exited: Promise<CliExit>;
  readonly #waiters = new Set<() => void>();

  constructor(args: string[], options: CliProcessOptions = {}) {
    const env: Record<string, string | undefined> = { ...process.env, ISOLET_API: undefined, ISOLET_API_TOKEN: undefined, ...options.env };
    for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
    this.child = spawn(process.execPath, ['--no-node-snapshot', BIN, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin!.end(options.stdin ?? '');
    for (const stream of ['stdout', 'stderr'] as const) {
      this.child[stream]!.setEncoding('utf8').on('data', (chunk: string) => {
        this[stream] += chunk;
        this.#notify();
      });
    }
    // An exit with no output after it would otherwise wake no waiter.
    this.child.on('exit', () => this.#notify());
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.#notify();
        resolve({ code, signal });
      });
    });
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Marks the current end of output; `waitFor` with a mark looks only at what comes after it. */
  mark(): { stdout: number; stderr: number } {
    return { stdout: this.stdout.length, stderr: this.stderr.length };
  }

  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, since = { stdout: 0, stderr: 0 }): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        this.#waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`${why} before ${stream} matched ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      };
      const check = () => {
        const match = pattern.exec(this[stream].slice(since[stream]));
        if (match) {
          this.#waiters.delete(check);
          clearTimeout(timer);
          resolve(match);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          fail('isolet exited');
        }
      };
      // Well inside the tests' own timeouts: a line that never comes fails with what was said
      // instead of a silent timeout of the whole test.
      const timer = setTimeout(() => fail(`${WAIT_FOR_MS / 1000} s passed`), WAIT_FOR_MS);
      this.#waiters.add(check);
      check();
    });
  }

  /** The address `isolet dev` says it listens on (`http://127.0.0.1:PORT`), once it says so. */
  async listening(): Promise<string> {
    return (await this.waitFor('stdout', /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m))[1]!;
  }

  /** Ends the process if it still runs (SIGKILL unless told otherwise). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Writes a project's files (relative paths to their text) under `dir`, making folders as needed. */
export async function writeProject(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [file, content] of Object.entries(files)) {
    await mkdir(join(dir, file, '..'), { recursive: true });
    await writeFile(join(dir, file), content);
  }
}
