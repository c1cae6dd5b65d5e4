// The host half of the memory locks (sandbox.ts): what the sandbox needs to know of the
// worker's limits to state them in its errors and to size its caps.

import type { OperationTable, SyncOp } from '../../runtime/host-ops.ts';

export const memorySyncOps = {
  /** The worker's memory limit in MB (WorkerLimits.memoryMb), asked once per context at init. */
  'memory.limitMb': (ctx) => ctx.limits.memoryMb,
} satisfies Partial<OperationTable>;
