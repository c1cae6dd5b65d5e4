// Why an isolate stopped, and what the client and the worker's log are told about it.

import type { IsolateEndReason, WorkerLimits } from './types.ts';

/** What was running: a request, the worker's top-level code, or work a call left running after its request was over. */
export type CpuPhase = 'request' | 'startup' | 'stray';

export type Termination =
  | { kind: 'cpu'; usedMs: number; limitMs: number; phase: CpuPhase }
  /** `usedMb` when it was measured; V8 and isolated-vm stop an isolate at its heap limit without saying by how much. */
  | { kind: 'memory'; usedMb?: number; limitMb: number }
  | { kind: 'replaced' }
  /** `cause`: which bound of the Runtime made room (maxIsolates or memoryBudgetMb); none at shutdown. */
  | { kind: 'evicted'; cause?: 'isolates' | 'memory' }
  | { kind: 'crashed'; message: string };

export function describeTermination(t: Termination): string {
  switch (t.kind) {
    case 'cpu':
      return t.phase === 'startup'
        ? `Worker exceeded its CPU time limit while loading (used ${t.usedMs.toFixed(1)} ms of ${t.limitMs} ms for top-level code).`
        : t.phase === 'stray'
          ? `Worker exceeded its CPU time limit in work that went on after its response (used ${t.usedMs.toFixed(1)} ms of ${t.limitMs} ms); keep work after the response inside ctx.waitUntil(), where it counts against the request.`
          : `Worker exceeded its CPU time limit (used ${t.usedMs.toFixed(1)} ms of ${t.limitMs} ms per request).`;
    case 'memory':
      return t.usedMb === undefined
        ? `Worker exceeded its memory limit of ${t.limitMb} MB per isolate.`
        : `Worker exceeded its memory limit (used ${t.usedMb.toFixed(1)} MB of ${t.limitMb} MB per isolate).`;
    case 'replaced':
      return 'Worker was replaced by a new version.';
    case 'evicted':
      return 'Worker isolate was evicted.';
    case 'crashed':
      return `Worker isolate crashed: ${t.message}`;
  }
}

/** The status a client gets when its request died with the isolate. */
export function terminationStatus(t: Termination): number {
  return t.kind === 'cpu' || t.kind === 'memory' ? 503 : 500;
}

/** The short body a client gets when its request died with the isolate. */
export function terminationResponseBody(t: Termination): string {
  switch (t.kind) {
    case 'cpu':
      return 'Error 1102: Worker exceeded CPU time limit.\n';
    case 'memory':
      return 'Error 1102: Worker exceeded memory limit.\n';
    default:
      return 'Error 1101: Worker threw exception.\n';
  }
}

/** How a termination is counted in metrics. */
export function endReason(t: Termination | undefined): IsolateEndReason {
  if (t === undefined) return 'crashed';
  if (t.kind === 'evicted') return t.cause === undefined ? 'shutdown' : t.cause === 'isolates' ? 'evicted-isolates' : 'evicted-memory';
  return t.kind;
}

export function cpuTermination(usedNs: number, limits: WorkerLimits, phase: CpuPhase): Termination {
  return {
    kind: 'cpu',
    usedMs: usedNs / 1e6,
    limitMs: phase === 'startup' ? limits.startupCpuMs : limits.cpuMs,
    phase,
  };
}
