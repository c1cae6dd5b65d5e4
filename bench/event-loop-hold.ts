// How long one tenant's large values hold the host's event loop, which every tenant of the
// process shares. Whatever crosses the isolate wall in one call is copied onto the host's main
// thread in one go (and a synchronous host operation runs there too), so a worker that hands the
// platform tens of megabytes at once stalls every other tenant's I/O for as long as that copy
// takes, whatever its own CPU limit. Each case here is one worker doing that on every request
// (with a CPU limit of 5 s, so that its work goes through: the worst case for the host), while a
// neighbour in the same Runtime is asked for every 5 ms; the event loop's delay is read with
// monitorEventLoopDelay and the neighbour's latency from its answers.
//
// Then the same for RPC between runtime processes (the ProcessPool `isolet serve` runs, two
// processes): the caller in one, the called worker in the other, a neighbour in each, asked for
// every 5 ms through the control process; their latency says what the call cost both processes and
// the control process that relays it (on a machine of few cores, the CPU the copies take too).
//
//   node --no-node-snapshot bench/event-loop-hold.ts [--mb 40] [--process-mb 30] [--requests 3] [--write]

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Runtime } from '../src/runtime/runtime.ts';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { homeIndex } from '../src/supervisor/placement.ts';
import type { RuntimeRequest, RuntimeResponse, WorkerDefinition } from '../src/runtime/types.ts';
import { HELLO_WORKER } from './support/hello.ts';
import { drainBody, numberArg, fmt, percentile, progress, runStandalone, sleep, table, type BenchResult } from './lib.ts';

interface Case {
  name: string;
  what: string;
  /** The attacker's module source; `MB` is replaced by the size. */
  source: string;
  bindings?: WorkerDefinition['bindings'];
}

const CASES: Case[] = [
  {
    name: 'digest-stream',
    what: 'one DigestStream write of MB MiB',
    source: `const big = new Uint8Array(MB * 1024 * 1024);
export default { async fetch() { const s = new crypto.DigestStream('SHA-256'); const w = s.getWriter(); await w.write(big); await w.close(); return new Response(String((await s.digest).byteLength)); } };`,
  },
  {
    name: 'subtle-digest',
    what: 'crypto.subtle.digest of MB MiB',
    source: `const big = new Uint8Array(MB * 1024 * 1024);
export default { async fetch() { return new Response(String((await crypto.subtle.digest('SHA-256', big)).byteLength)); } };`,
  },
  {
    name: 'subtle-encrypt',
    what: 'crypto.subtle.encrypt (AES-GCM) of MB MiB',
    source: `const big = new Uint8Array(MB * 1024 * 1024);
export default { async fetch() { const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt']); return new Response(String((await crypto.subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, key, big)).byteLength)); } };`,
  },
  {
    name: 'fetch-body',
    what: 'fetch() with a text body of MB MiB (to an address the egress policy refuses once the request is made)',
    source: `const big = 'b'.repeat(MB * 1024 * 1024);
export default { async fetch() { try { await fetch('http://127.0.0.1:9/', { method: 'POST', body: big }); } catch {} return new Response('sent'); } };`,
  },
  {
    name: 'response-head',
    what: 'a response with a header of MB MiB',
    source: `const big = 'h'.repeat(MB * 1024 * 1024);
export default { fetch() { return new Response('x', { headers: { 'x-big': big } }); } };`,
  },
  {
    name: 'rpc-argument',
    what: 'an RPC call to another worker with a string argument of MB MiB',
    source: `const big = 'r'.repeat(MB * 1024 * 1024);
export default { async fetch(request, env) { return new Response(String(await env.API.take(big))); } };`,
    bindings: { API: { type: 'service', service: 'api' } },
  },
  {
    name: 'rpc-result',
    what: 'an RPC call to another worker that returns a string of MB MiB',
    source: `export default { async fetch(request, env) { return new Response(String((await env.API.give(MB)).length)); } };`,
    bindings: { API: { type: 'service', service: 'api' } },
  },
  {
    name: 'host-binding',
    what: 'a call of an embedder\'s binding with a Uint8Array of MB MiB',
    source: `const big = new Uint8Array(MB * 1024 * 1024);
export default { async fetch(request, env) { return new Response(String(await env.STORE.put(big))); } };`,
    bindings: { STORE: { put: (bytes: Uint8Array) => bytes.byteLength } } as unknown as WorkerDefinition['bindings'],
  },
  {
    name: 'host-binding-nested',
    what: 'a call of an embedder\'s binding with an object holding a string of MB MiB (refused past 8 MiB), then one of just under 8 MiB (read on the host)',
    source: `const big = 'n'.repeat(MB * 1024 * 1024);
const most = big.slice(0, 8 * 1024 * 1024 - 64);
export default { async fetch(request, env) {
  let refused = 'taken';
  try { await env.STORE.put({ big }); } catch (e) { refused = e.name; }
  return new Response(refused + ' ' + await env.STORE.put({ most }));
} };`,
    bindings: { STORE: { put: (value: { most?: string }) => value.most?.length ?? 0 } } as unknown as WorkerDefinition['bindings'],
  },
];

const API_WORKER = `import { WorkerEntrypoint } from 'cloudflare:workers';
export default class extends WorkerEntrypoint { fetch() { return new Response('api'); } take(value) { return value.length; } give(mb) { return 'g'.repeat(mb * 1024 * 1024); } }`;

interface Row {
  name: string;
  what: string;
  statuses: string;
  loopMaxMs: number;
  neighbourP50Ms: number;
  neighbourMaxMs: number;
}

async function measure(c: Case, mb: number, requests: number): Promise<Row> {
  const runtime = new Runtime({ log: () => {}, reduceIdleMemoryAfterMs: 0 });
  try {
    const limits = { cpuMs: 5000 };
    await runtime.load('api', { limits, modules: [{ name: 'main.js', source: API_WORKER }] });
    await runtime.load('neighbour', { modules: [{ name: 'main.js', source: HELLO_WORKER }] });
    await runtime.load('attacker', { limits, bindings: c.bindings, modules: [{ name: 'main.js', source: c.source.replaceAll('MB', String(mb)) }] });
    const ask = (worker: string) => runtime.fetch(worker, { method: 'GET', url: `http://${worker}/`, headers: [] });
    await drainBody(await ask('neighbour'));
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    let attacking = true;
    // Asked for on a fixed schedule, and timed from when each request was due: a request that
    // could not even start while the loop was held counts that wait.
    const neighbour = neighbourLatencies(() => ask('neighbour'), () => attacking);
    const statuses: number[] = [];
    for (let i = 0; i < requests; i++) {
      const response = await ask('attacker');
      await drainBody(response);
      statuses.push(response.status);
    }
    attacking = false;
    const latencies = await neighbour;
    loop.disable();
    return {
      name: c.name,
      what: c.what.replace('MB', String(mb)),
      statuses: countStatuses(statuses),
      loopMaxMs: loop.max / 1e6,
      neighbourP50Ms: percentile(latencies, 50),
      neighbourMaxMs: latencies.at(-1) ?? NaN,
    };
  } finally {
    await runtime.close();
  }
}

/** Requests to `ask(worker)` every 5 ms, timed from when each was due, until `running()` is false. */
async function neighbourLatencies(ask: () => Promise<RuntimeResponse>, running: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let k = 0; running(); k++) {
    const due = start + k * 5;
    const wait = due - performance.now();
    // Whole milliseconds up: a timer may fire up to a millisecond early otherwise.
    if (wait > 0) await sleep(Math.ceil(wait));
    // Not awaited one by one: a request held up does not stop the next from being due.
    pending.push(ask().then(drainBody).then(() => void latencies.push(performance.now() - due)));
  }
  await Promise.all(pending);
  return latencies.sort((a, b) => a - b);
}

interface ProcessRow {
  name: string;
  what: string;
  statuses: string;
  callerSideP50Ms: number;
  callerSideMaxMs: number;
  calleeSideP50Ms: number;
  calleeSideMaxMs: number;
}

const PROCESS_CASES = [
  { name: 'rpc-argument', what: 'an RPC call with a string argument of MB MiB', path: '/take' },
  { name: 'rpc-result', what: 'an RPC call that returns a string of MB MiB', path: '/give' },
];

/** RPC between two runtime processes, a neighbour in each. */
async function measureProcesses(mb: number, requests: number): Promise<ProcessRow[]> {
  const pool = new ProcessPool({ processes: 2, untriedRequests: 0, runtime: { limits: { cpuMs: 5000 } }, workerLog: () => {}, log: () => {} });
  const nameOn = (prefix: string, index: number): string => {
    for (let n = 0; ; n++) if (homeIndex(`${prefix}${n}`, 'default', 2) === index) return `${prefix}${n}`;
  };
  const worker = (source: string, bindings?: WorkerDefinition['bindings']): WorkerDefinition => ({ modules: [{ name: 'main.js', source }], account: 'bench', ...(bindings === undefined ? {} : { bindings }) });
  const get = (path: string): RuntimeRequest => ({ method: 'GET', url: `https://bench${path}`, headers: [] });
  const caller = nameOn('caller', 0);
  const callee = nameOn('api', 1);
  const neighbours = [nameOn('neighbour', 0), nameOn('neighbour', 1)] as const;
  try {
    await pool.load(callee, worker(API_WORKER));
    await pool.load(caller, worker(`export default { async fetch(request, env) {
      if (new URL(request.url).pathname === '/take') return new Response(String(await env.API.take('r'.repeat(${mb} * 1024 * 1024))));
      return new Response(String((await env.API.give(${mb})).length));
    } };`, { API: { type: 'service', service: callee } }));
    for (const name of neighbours) await pool.load(name, worker(HELLO_WORKER));
    const rows: ProcessRow[] = [];
    for (const c of PROCESS_CASES) {
      progress(`event-loop-hold: ${c.name} between runtime processes`);
      await drainBody(await pool.fetch(caller, get(c.path)));
      let attacking = true;
      const sides = neighbours.map((name) => neighbourLatencies(() => pool.fetch(name, get('/')), () => attacking));
      const statuses: number[] = [];
      for (let i = 0; i < requests; i++) {
        const response = await pool.fetch(caller, get(c.path));
        await drainBody(response);
        statuses.push(response.status);
      }
      attacking = false;
      const [callerSide, calleeSide] = await Promise.all(sides);
      rows.push({
        name: c.name,
        what: c.what.replace('MB', String(mb)),
        statuses: countStatuses(statuses),
        callerSideP50Ms: percentile(callerSide!, 50),
        callerSideMaxMs: callerSide!.at(-1) ?? NaN,
        calleeSideP50Ms: percentile(calleeSide!, 50),
        calleeSideMaxMs: calleeSide!.at(-1) ?? NaN,
      });
    }
    return rows;
  } finally {
    await pool.close();
  }
}

function countStatuses(statuses: number[]): string {
  const counted = new Map<number, number>();
  for (const status of statuses) counted.set(status, (counted.get(status) ?? 0) + 1);
  return [...counted].map(([status, n]) => `${n} x ${status}`).join(', ');
}

/** What no case may hold the event loop for: a turn of that length is a latency every tenant of the process sees. */
const TARGET_MS = 50;

async function main(args: string[]): Promise<BenchResult> {
  const mb = numberArg(args, '--mb', 40);
  const requests = numberArg(args, '--requests', 3);
  const rows: Row[] = [];
  for (const c of CASES) {
    progress(`event-loop-hold: ${c.name}`);
    rows.push(await measure(c, mb, requests));
  }
  const processMb = numberArg(args, '--process-mb', 30);
  const processRows = await measureProcesses(processMb, requests);
  const over = rows.filter((r) => r.loopMaxMs > TARGET_MS);
  return {
    name: 'event-loop-hold',
    title: 'How long one tenant\'s large values hold the host\'s event loop',
    markdown: [
      `In one Runtime, a worker (CPU limit 5 s) does the case below on each of ${requests} requests, one after another, while a hello-world neighbour is asked for every 5 ms on a fixed schedule. Event-loop delay: the longest, from monitorEventLoopDelay (1 ms resolution) over the run; the neighbour's latency is from when each of its requests was due to its answer, so a request that could not start while the loop was held counts the wait.`,
      '',
      table(
        ['case', 'what the worker does', 'its answers', 'event loop held, max ms', 'neighbour p50 ms', 'neighbour max ms'],
        rows.map((r) => [r.name, r.what, r.statuses, fmt(r.loopMaxMs, 1), fmt(r.neighbourP50Ms, 1), fmt(r.neighbourMaxMs, 1)]),
      ),
      '',
      `Between runtime processes (two, as \`isolet serve\` runs them): the caller in one, the called worker in the other, a hello-world neighbour in each, asked for every 5 ms through the control process while the caller makes ${requests} calls. No event-loop column: the processes are children; the neighbours' latency shows what the calls cost both processes and the control process that relays them, and, with few cores, the CPU the copies take from everyone.`,
      '',
      table(
        ['case', 'what the caller does', 'its answers', "caller's process: neighbour p50 ms", 'max ms', "callee's process: neighbour p50 ms", 'max ms'],
        processRows.map((r) => [r.name, r.what, r.statuses, fmt(r.callerSideP50Ms, 1), fmt(r.callerSideMaxMs, 1), fmt(r.calleeSideP50Ms, 1), fmt(r.calleeSideMaxMs, 1)]),
      ),
    ].join('\n'),
    targets: [
      {
        name: `no case holds the event loop more than ${TARGET_MS} ms`,
        met: over.length === 0,
        detail: over.length === 0
          ? `longest ${fmt(Math.max(...rows.map((r) => r.loopMaxMs)), 1)} ms.`
          : over.map((r) => `${r.name}: ${fmt(r.loopMaxMs, 1)} ms`).join('; ') + '.',
      },
    ],
    data: { mb, requests, rows, processMb, processRows },
  };
}

await runStandalone('event-loop-hold', main);
