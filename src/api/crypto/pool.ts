// Expensive crypto work (RSA key generation, PBKDF2, digests of large inputs, WebCrypto calls
// on large inputs) on a small pool of worker threads of its own, charged to the request that
// asked for it.
//
// Why not Node's WebCrypto: it runs its jobs on libuv's thread pool, which DNS lookups and file
// I/O share: one tenant's 8192-bit RSA keys held it for seconds while another tenant's fetch()
// waited 13.9 s for its lookup. Worker threads share that pool too, so the jobs here use Node's
// synchronous forms (generateKeyPairSync, pbkdf2Sync, createHash), which run on the worker
// thread itself, and process.threadCpuUsage() there measures exactly the job's CPU.
//
// Fairness: at most one job per account runs at a time (an account cannot hold every thread),
// each account has a short queue of its own and the pool a bounded total; accounts with work
// waiting are served in turn. A job already running cannot be stopped (it is one native call),
// so the limits on its size (RSA modulus, PBKDF2 iterations, input size) are what bound it; its
// CPU is charged when it ends, and a request that went over its CPU limit is stopped then.

import { Worker } from 'node:worker_threads';
import type { OpContext } from '../../runtime/host-ops.ts';

/** Worker threads, started on first use. */
const THREADS = 2;
/** Jobs of one account running at once. */
const MAX_RUNNING_PER_ACCOUNT = 1;
/** Jobs of one account waiting; past it a job is refused (QuotaExceededError). */
export const MAX_QUEUED_PER_ACCOUNT = 16;
/** Jobs waiting in all. */
const MAX_QUEUED = 256;

export type PoolJob =
  | { kind: 'rsa'; modulusLength: number; publicExponent: number }
  | { kind: 'pbkdf2'; password: ArrayBuffer; salt: ArrayBuffer; iterations: number; bytes: number; hash: string }
  | { kind: 'digest'; data: ArrayBuffer; hash: string }
  /**
   * Node's own WebCrypto call, so that the answer is the one the host's thread would give: Node
   * copies the input on the thread that makes the call (its cipher jobs take a copy), and on
   * the host's main thread a copy of tens of MB held every tenant's requests (40 MiB: 136 ms).
   * The cipher itself runs where Node runs it; what this thread spends is charged.
   */
  | { kind: 'subtle'; method: SubtleMethod; algorithm: unknown; key: unknown; data: ArrayBuffer; signature?: ArrayBuffer };

export type SubtleMethod = 'encrypt' | 'decrypt' | 'sign' | 'verify';

// CommonJS, run with `eval`: no file to find in a checkout or in the npm package.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const exact = (b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
parentPort.on('message', async (job) => {
  const start = process.threadCpuUsage();
  let result, error, errorName;
  try {
    if (job.kind === 'rsa') {
      result = crypto.generateKeyPairSync('rsa', { modulusLength: job.modulusLength, publicExponent: job.publicExponent });
    } else if (job.kind === 'pbkdf2') {
      result = exact(crypto.pbkdf2Sync(new Uint8Array(job.password), new Uint8Array(job.salt), job.iterations, job.bytes, job.hash));
    } else if (job.kind === 'digest') {
      result = exact(crypto.createHash(job.hash).update(new Uint8Array(job.data)).digest());
    } else if (job.kind === 'subtle') {
      const subtle = crypto.webcrypto.subtle;
      result = job.method === 'verify'
        ? await subtle.verify(job.algorithm, job.key, job.signature, job.data)
        : await subtle[job.method](job.algorithm, job.key, job.data);
    } else {
      throw new Error('unknown job');
    }
  } catch (e) {
    error = String(e && e.message);
    // A WebCrypto call's error keeps its name (OperationError for a failed decryption, ...).
    if (job.kind === 'subtle' && e && typeof e.name === 'string') errorName = e.name;
  }
  const used = process.threadCpuUsage(start);
  parentPort.postMessage({ result, error, errorName, cpuNs: (used.user + used.system) * 1000 }, result instanceof ArrayBuffer ? [result] : []);
});`;

interface Pending {
  account: string;
  job: PoolJob;
  transfer: ArrayBuffer[];
  ctx: OpContext;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** What a thread answers: the result, or the error (named only for a WebCrypto call, whose message is Node's). */
interface PoolAnswer {
  result: unknown;
  error?: string;
  errorName?: string;
  cpuNs: number;
}

interface Slot {
  worker: Worker;
  job: Pending | undefined;
}

function opError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

class CryptoPool {
  private readonly slots: Slot[] = [];
  /** Waiting jobs by account, in arrival order; the map's order is the turn order. */
  private readonly queues = new Map<string, Pending[]>();
  private readonly running = new Map<string, number>();
  private queued = 0;

  run<T>(ctx: OpContext, job: PoolJob, transfer: ArrayBuffer[] = []): Promise<T> {
    const account = ctx.account;
    const queue = this.queues.get(account) ?? [];
    if (queue.length >= MAX_QUEUED_PER_ACCOUNT || this.queued >= MAX_QUEUED) {
      return Promise.reject(opError(
        'QuotaExceededError',
        `Too many expensive crypto operations are waiting (at most ${MAX_QUEUED_PER_ACCOUNT} per account); await earlier ones before starting more.`,
      ));
    }
    return new Promise<T>((resolve, reject) => {
      queue.push({ account, job, transfer, ctx, resolve: resolve as (value: unknown) => void, reject });
      this.queues.set(account, queue);
      this.queued++;
      this.schedule();
    });
  }

  /** Hands waiting jobs to free threads, one account at a time, in turn. */
  private schedule(): void {
    for (;;) {
      const slot = this.freeSlot();
      if (!slot) return;
      const next = this.nextJob();
      if (!next) return;
      this.start(slot, next);
    }
  }

  private freeSlot(): Slot | undefined {
    const free = this.slots.find((slot) => slot.job === undefined);
    if (free) return free;
    if (this.slots.length >= THREADS) return undefined;
    const slot: Slot = { worker: new Worker(WORKER_SOURCE, { eval: true }), job: undefined };
    slot.worker.on('message', (message: PoolAnswer) => this.finish(slot, message));
    slot.worker.on('error', () => this.lose(slot));
    slot.worker.on('exit', () => this.lose(slot));
    slot.worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private nextJob(): Pending | undefined {
    for (const [account, queue] of this.queues) {
      if ((this.running.get(account) ?? 0) >= MAX_RUNNING_PER_ACCOUNT) continue;
      const pending = queue.shift()!;
      this.queued--;
      // To the back of the turn order (or gone when it has nothing more waiting).
      this.queues.delete(account);
      if (queue.length > 0) this.queues.set(account, queue);
      if (pending.ctx.request?.signal.aborted) {
        pending.reject(opError('OperationError', 'The request this operation belonged to has ended.'));
        return this.nextJob();
      }
      return pending;
    }
    return undefined;
  }

  private start(slot: Slot, pending: Pending): void {
    slot.job = pending;
    // Referenced while it works, so a pending operation keeps the process alive; idle threads do not.
    slot.worker.ref();
    this.running.set(pending.account, (this.running.get(pending.account) ?? 0) + 1);
    slot.worker.postMessage(pending.job, pending.transfer);
  }

  private release(slot: Slot): Pending | undefined {
    const pending = slot.job;
    slot.job = undefined;
    slot.worker.unref();
    if (pending) {
      const count = (this.running.get(pending.account) ?? 1) - 1;
      if (count > 0) this.running.set(pending.account, count);
      else this.running.delete(pending.account);
    }
    return pending;
  }

  private finish(slot: Slot, message: PoolAnswer): void {
    const pending = this.release(slot);
    if (pending) {
      pending.ctx.chargeCpu(message.cpuNs);
      if (message.error !== undefined) {
        pending.reject(message.errorName !== undefined
          ? opError(message.errorName, message.error)
          : opError('OperationError', 'The operation failed for an operation-specific reason'));
      } else {
        pending.resolve(message.result);
      }
    }
    this.schedule();
  }

  /** A thread died (it should not): its job fails, and a new thread takes its place on demand. */
  private lose(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index === -1) return;
    this.slots.splice(index, 1);
    this.release(slot)?.reject(opError('OperationError', 'The operation failed for an operation-specific reason'));
    this.schedule();
  }
}

let pool: CryptoPool | undefined;

/** Runs `job` on the crypto threads for ctx's account; its CPU is charged to ctx's request. */
export function runOnCryptoPool<T>(ctx: OpContext, job: PoolJob, transfer: ArrayBuffer[] = []): Promise<T> {
  pool ??= new CryptoPool();
  return pool.run<T>(ctx, job, transfer);
}
