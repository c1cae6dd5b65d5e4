// isolet as a library: run tenants' Workers-compatible code in V8 isolates inside your process.
export { Runtime, UnknownWorkerError, DEFAULT_MAX_ISOLATES, DEFAULT_REDUCE_IDLE_MEMORY_AFTER_MS, type LoadOptions } from './runtime/runtime.ts';
export { BindingError, DEFAULT_LIMITS, WorkerLoadError } from './runtime/types.ts';
export { MALLOC_TUNABLES } from './runtime/malloc-tunables.ts';
export { RUNTIME_HOST_FLAGS } from './runtime/engine-flags.ts';
export { RpcValue } from './runtime/rpc-value.ts';
export type {
  BindingAnswer,
  BindingCall,
  BindingHost,
  BindingSpec,
  HostBinding,
  IsolateMemoryUsage,
  JsonValue,
  LogLevel,
  RuntimeOptions,
  RuntimeRequest,
  RuntimeResponse,
  ScheduledEvent,
  ScheduledOutcome,
  ScheduledResult,
  ServiceCall,
  ServiceHost,
  WorkerDefinition,
  WorkerLimits,
  WorkerLogEntry,
  WorkerModule,
} from './runtime/types.ts';
