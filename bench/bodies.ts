// Bodies across the isolate wall, in process (Runtime.fetch with a body iterable, the response
// body consumed; no HTTP):
//
// - pass-through of 100 MB: `new Response(request.body)`, through a TransformStream, and read
//   with a reader and enqueued into a ReadableStream of the worker's own, in MB/s, next to a
//   plain Node loop that copies the same chunks (the reference: what memory does here);
// - a 100 MB request body read whole (arrayBuffer(), text()) under the default limits;
// - a 16 MiB response streamed in 1 MiB chunks: the worker's CPU from its request log entry.
//
// Every case runs a warm-up, then `--rounds` rounds; medians are quoted, with the minor page
// faults the process took per round: on VMs where a fault costs microseconds, fresh memory,
// not copying, is what bodies cost.
//
// It runs with the malloc settings isolet gives its runtime processes (MALLOC_TUNABLES, in
// src/runtime/malloc-tunables.ts), starting itself again with them when the environment has no
// GLIBC_TUNABLES; `--default-allocator` keeps glibc's defaults instead, to compare.
//
//   node --no-node-snapshot bench/bodies.ts [--rounds 7] [--default-allocator] [--write]

import { spawn } from 'node:child_process';
import { MALLOC_TUNABLES, withMallocTunables } from '../src/runtime/malloc-tunables.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import type { RuntimeResponse, WorkerLogEntry } from '../src/runtime/types.ts';
import { positiveArg, fmt, fmtInt, median, progress, runStandalone, table, type BenchResult } from './lib.ts';

const MB = 1024 * 1024;
const TOTAL = 100 * MB;
const CHUNK = 64 * 1024;
const TARGET_MBPS = 1000;
const TARGET_STREAM_CPU_MS = 10;

const PASS_THROUGH: Record<string, string> = {
  'new Response(request.body)': `export default { fetch: (request) => new Response(request.body) };`,
  'through a TransformStream': `export default { fetch: (request) => new Response(request.body.pipeThrough(new TransformStream())) };`,
  'reader, enqueued into its own ReadableStream': `export default {
  fetch(request) {
    const reader = request.body.getReader();
    return new Response(new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
    }));
  },
};`,
};

const WHOLE = `export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/text') return new Response(String((await request.text()).length));
    return new Response(String((await request.arrayBuffer()).byteLength));
  },
};`;

const STREAMED = `export default {
  fetch() {
    let n = 0;
    return new Response(new ReadableStream({
      pull(controller) {
        if (n++ === 16) controller.close();
        else controller.enqueue(new Uint8Array(${MB}));
      },
    }));
  },
};`;

/** TOTAL bytes in CHUNK-sized chunks, each a fresh buffer as a socket would give. */
async function* upload(total: number, ascii = false): AsyncGenerator<Uint8Array> {
  const pattern = Buffer.alloc(CHUNK, ascii ? 'a' : '\u00e9');
  for (let at = 0; at < total; at += CHUNK) yield pattern.subarray(0, Math.min(CHUNK, total - at));
}

async function consume(body: RuntimeResponse['body']): Promise<number> {
  if (body === null) return 0;
  if (body instanceof Uint8Array) return body.byteLength;
  let bytes = 0;
  for await (const chunk of body) bytes += chunk.byteLength;
  return bytes;
}

interface Sample {
  mbps: number;
  cpuMs: number;
  faults: number;
  /** The whole process's CPU (every thread, user and system): the work a round took, whatever the machine's load. */
  processCpuMs: number;
}

function usage(): { faults: number; cpuUs: number } {
  const u = process.resourceUsage();
  return { faults: u.minorPageFault, cpuUs: u.userCPUTime + u.systemCPUTime };
}

async function main(args: string[]): Promise<BenchResult> {
  const rounds = Math.round(positiveArg(args, '--rounds', 7));
  const logs: WorkerLogEntry[] = [];
  const runtime = new Runtime({ log: (entry) => void (entry.type === 'request' || entry.level === 'error' ? logs.push(entry) : undefined), reduceIdleMemoryAfterMs: 0 });
  const names = Object.keys(PASS_THROUGH);
  for (let i = 0; i < names.length; i++) {
    // The pass-through variants run JavaScript per chunk: CPU limit raised, memory at the default.
    await runtime.load(`pass${i}`, { modules: [{ name: 'main.js', source: PASS_THROUGH[names[i]!]! }], limits: { cpuMs: 60_000 } });
  }
  await runtime.load('whole', { modules: [{ name: 'main.js', source: WHOLE }] });
  await runtime.load('streamed', { modules: [{ name: 'main.js', source: STREAMED }], limits: { cpuMs: 60_000 } });

  const lastCpu = async (worker: string) => {
    await new Promise((resolve) => setImmediate(resolve));
    const entry = logs.findLast((e) => e.worker === worker && e.type === 'request');
    return typeof entry?.cpuMs === 'number' ? entry.cpuMs : NaN;
  };
  async function measure(label: string, run: () => Promise<{ bytes: number; worker?: string }>): Promise<Sample[]> {
    progress(label);
    await run();
    const samples: Sample[] = [];
    for (let r = 0; r < rounds; r++) {
      const u0 = usage();
      const t0 = process.hrtime.bigint();
      const { bytes, worker } = await run();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const u1 = usage();
      samples.push({
        mbps: bytes / MB / seconds, cpuMs: worker ? await lastCpu(worker) : NaN, faults: u1.faults - u0.faults,
        processCpuMs: (u1.cpuUs - u0.cpuUs) / 1000,
      });
    }
    return samples;
  }

  const rows: (string | number)[][] = [];
  const data: Record<string, Sample[]> = {};
  const row = (label: string, samples: Sample[]) => {
    data[label] = samples;
    rows.push([label, fmtInt(median(samples.map((s) => s.mbps))), fmtInt(Math.min(...samples.map((s) => s.mbps))) + ' - ' + fmtInt(Math.max(...samples.map((s) => s.mbps))),
      fmt(median(samples.map((s) => s.cpuMs)), 1), fmtInt(median(samples.map((s) => s.processCpuMs))), fmtInt(median(samples.map((s) => s.faults)))]);
  };

  row('plain Node loop copying each chunk (reference)', await measure('node copy loop', async () => {
    let bytes = 0;
    for await (const chunk of upload(TOTAL)) bytes += Buffer.from(chunk).byteLength;
    return { bytes };
  }));
  for (let i = 0; i < names.length; i++) {
    row(`pass-through: ${names[i]}`, await measure(names[i]!, async () => {
      const response = await runtime.fetch(`pass${i}`, { method: 'POST', url: 'http://pass.test/', headers: [['content-length', String(TOTAL)]], body: upload(TOTAL) });
      return { bytes: await consume(response.body), worker: `pass${i}` };
    }));
  }
  for (const path of ['/arrayBuffer', '/text']) {
    row(`await request.${path.slice(1)}() of 100 MB, default limits`, await measure(path, async () => {
      const response = await runtime.fetch('whole', { method: 'POST', url: `http://whole.test${path}`, headers: [['content-length', String(TOTAL)]], body: upload(TOTAL, true) });
      const text = Buffer.from(response.body as Uint8Array).toString();
      if (response.status !== 200 || Number(text) !== TOTAL) throw new Error(`${path}: ${response.status} ${text.slice(0, 200)}`);
      return { bytes: TOTAL, worker: 'whole' };
    }));
  }
  row('16 MiB response in 1 MiB chunks', await measure('streamed', async () => {
    const response = await runtime.fetch('streamed', { method: 'GET', url: 'http://streamed.test/', headers: [] });
    return { bytes: await consume(response.body), worker: 'streamed' };
  }));
  await runtime.close();

  const passMbps = names.map((_, i) => median(data[`pass-through: ${names[i]}`]!.map((s) => s.mbps)));
  const slowest = Math.min(...passMbps);
  const referenceMbps = median(data['plain Node loop copying each chunk (reference)']!.map((s) => s.mbps));
  const streamCpu = median(data['16 MiB response in 1 MiB chunks']!.map((s) => s.cpuMs));
  const wholeOk = ['/arrayBuffer', '/text'].every((p) => data[`await request.${p.slice(1)}() of 100 MB, default limits`]!.length === rounds);
  const tunables = process.env.GLIBC_TUNABLES;
  const allocator = tunables === undefined ? "glibc's default malloc settings (`--default-allocator`)" : tunables === MALLOC_TUNABLES ? `with the malloc settings of isolet's runtime processes (\`GLIBC_TUNABLES=${tunables}\`)` : `with \`GLIBC_TUNABLES=${tunables}\` from the environment`;
  const markdown = [
    `100 MB request bodies in ${CHUNK / 1024} KiB chunks (views of one buffer: the source allocates nothing) and a 16 MiB streamed response, in process, ${allocator}; a warm-up, then ${rounds} rounds each. Worker CPU is the tenant's, from its request log entry; process CPU (every thread, user and system) and minor page faults are the whole process's per round, the work a round took whatever the machine's load.`,
    '',
    table(['case', 'MB/s (median)', 'MB/s (min - max)', 'worker CPU ms (median)', 'process CPU ms (median)', 'page faults per round (median)'], rows),
  ].join('\n');
  return {
    name: 'bodies',
    title: 'Bodies across the isolate wall',
    markdown,
    targets: [
      { name: `every pass-through variant streams 100 MB at >= ${TARGET_MBPS} MB/s in process`, met: slowest >= TARGET_MBPS, detail: `slowest median ${fmtInt(slowest)} MB/s (${passMbps.map((v) => fmtInt(v)).join(' / ')}); the Node copy loop made ${fmtInt(referenceMbps)} MB/s in the same run` },
      { name: '100 MB arrayBuffer() and text() succeed under the default limits (128 MB, 50 ms)', met: wholeOk, detail: wholeOk ? 'every round answered 200 with the full length' : 'failed' },
      { name: `a 16 MiB response in 1 MiB chunks costs the worker < ${TARGET_STREAM_CPU_MS} ms of CPU`, met: streamCpu < TARGET_STREAM_CPU_MS, detail: `median ${fmt(streamCpu, 1)} ms` },
    ],
    data,
  };
}

if (process.env.GLIBC_TUNABLES === undefined && !process.argv.includes('--default-allocator')) {
  // glibc reads its tunables only as a process starts.
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: withMallocTunables(process.env) });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await runStandalone('bodies', main);
}
