// glibc malloc settings for a process that runs isolates and moves bodies across their wall.
//
// Each MiB of a body that streams through a worker is allocated twice with malloc: the buffer
// the host joins the request's chunks into, and isolated-vm's copy of each chunk the worker
// sends back. With glibc's defaults both land on pages nobody has touched: pieces past 128 KiB
// get a fresh mmap, and memory freed at the top of a heap (or in one of the many per-thread
// arenas the isolate threads spread over) goes back to the kernel. A fresh page is a page fault
// per 4 KiB, which on a VM costs far more than copying the page. These settings keep freed
// memory for the next piece instead: pieces up to 4 MiB come from a heap; up to 128 MiB free at
// the top of a heap stays there (an isolate's GC frees its bodies' buffers in bursts of tens of
// MiB: with 64 MiB a TransformStream pass-through still took a third of the faults it took with
// none); and two arenas are shared by every thread, so what one thread frees serves another's
// next copy. Measured in docs/BENCHMARKS.md ("Bodies and the allocator"): about twice the MB/s of
// a worker that streams a body through, with a tenth of the page faults or fewer. The cost is
// memory kept after a burst of bodies: at most the trim threshold per arena, 256 MiB a process.
//
// GLIBC_TUNABLES is read once, as a process starts, so it is set where isolet starts a process
// (runtime processes); an embedder of the Runtime sets it in the environment its own process
// starts with. Other C libraries ignore it.

export const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=134217728:glibc.malloc.arena_max=2';

/** `env` with isolet's malloc settings added, unless it has GLIBC_TUNABLES of its own (the operator's choice wins). */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env.GLIBC_TUNABLES === undefined ? { ...env, GLIBC_TUNABLES: MALLOC_TUNABLES } : env;
}
