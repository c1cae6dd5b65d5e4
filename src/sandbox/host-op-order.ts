// The order in which the host's operations reach the sandbox's init(): isolated-vm Callbacks
// cross only as direct arguments, so they go positionally. Shared by both sides (the host's
// src/runtime/worker-isolate.ts and the sandbox's main.ts) so the two cannot drift apart.
export const HOST_OP_ORDER = ['log', 'uncaught', 'startTimer', 'clearTimer', 'requestDone', 'sync', 'async', 'loadModule', 'respond', 'respondSimple'] as const;
