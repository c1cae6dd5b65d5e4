// What a service-binding call costs: one request of a caller that answers by itself, that makes
// one RPC call (`env.API.add(1, 2)`), or that makes one `env.API.fetch()`, sent one after
// another, the median time per request. In one Runtime (the library face, and `isolet serve
// --processes 0`), and through runtime processes with the caller and the target in different
// ones (the calls cross the control process), where every request also crosses from this process
// to the caller's: the added cost of a call is the difference between rows.
//
//   node --no-node-snapshot bench/services.ts [--requests 2000] [--write]

import { Runtime } from '../src/runtime/runtime.ts';
import type { RuntimeRequest, RuntimeResponse, WorkerDefinition } from '../src/runtime/types.ts';
import { homeIndex } from '../src/supervisor/placement.ts';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { fmt, median, progress, runStandalone, table, type BenchResult } from './lib.ts';

const TARGET = `export default {
  add(a, b) { return a + b; },
  fetch() { return new Response('3'); },
};`;

const CALLER = `export default { async fetch(request, env) {
  const path = new URL(request.url).pathname;
  if (path === '/rpc') return new Response(String(await env.API.add(1, 2)));
  if (path === '/fetch') return new Response(await (await env.API.fetch('https://api/')).text());
  return new Response('3');
} };`;

const CASES: [string, string][] = [['answers by itself', '/'], ['one RPC call', '/rpc'], ['one fetch()', '/fetch']];

function worker(source: string, bindings?: WorkerDefinition['bindings']): WorkerDefinition {
  return { modules: [{ name: 'w.js', source }], account: 'bench', ...(bindings === undefined ? {} : { bindings }) };
}

async function drain(response: RuntimeResponse): Promise<string> {
  if (response.body === null) return '';
  if (response.body instanceof Uint8Array) return Buffer.from(response.body).toString();
  let text = '';
  for await (const chunk of response.body) text += Buffer.from(chunk).toString();
  return text;
}

/** Median µs per request of `path`, sent one after another `count` times after a warm-up. */
async function measure(fetch: (request: RuntimeRequest) => Promise<RuntimeResponse>, path: string, count: number): Promise<number[]> {
  const request = (): RuntimeRequest => ({ method: 'GET', url: `https://caller${path}`, headers: [] });
  for (let i = 0; i < Math.min(200, count); i++) await drain(await fetch(request()));
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const text = await drain(await fetch(request()));
    samples.push((performance.now() - started) * 1000);
    if (text !== '3') throw new Error(`${path}: ${text.slice(0, 200)}`);
  }
  return samples;
}

/** A name whose home is process `index` of a default tier of 2. */
function nameOn(prefix: string, index: number): string {
  for (let n = 0; ; n++) if (homeIndex(`${prefix}${n}`, 'default', 2) === index) return `${prefix}${n}`;
}

async function main(args: string[]): Promise<BenchResult> {
  const at = args.indexOf('--requests');
  const count = at >= 0 ? Number(args[at + 1]) : 2000;
  const data: Record<string, Record<string, number>> = {};
  const rows: string[][] = [];

  progress('in one Runtime');
  const runtime = new Runtime({ log: () => {} });
  await runtime.load('api', worker(TARGET));
  await runtime.load('caller', worker(CALLER, { API: { type: 'service', service: 'api' } }));
  const inProcess: Record<string, number> = {};
  for (const [name, path] of CASES) inProcess[name] = median(await measure((request) => runtime.fetch('caller', request), path, count));
  await runtime.close();
  data['one Runtime'] = inProcess;

  progress('through runtime processes');
  const pool = new ProcessPool({ processes: 2, spare: false, workerLog: () => {}, log: () => {} });
  const target = nameOn('api', 1);
  const caller = nameOn('caller', 0);
  await pool.load(target, worker(TARGET));
  await pool.load(caller, worker(CALLER, { API: { type: 'service', service: target } }));
  const processes: Record<string, number> = {};
  for (const [name, path] of CASES) processes[name] = median(await measure((request) => pool.fetch(caller, request), path, Math.ceil(count / 4)));
  await pool.close();
  data['two runtime processes'] = processes;

  for (const [name] of CASES) {
    rows.push([name, fmt(inProcess[name]!, 0), fmt(processes[name]!, 0)]);
  }
  rows.push(['added by one RPC call', fmt(inProcess['one RPC call']! - inProcess['answers by itself']!, 0), fmt(processes['one RPC call']! - processes['answers by itself']!, 0)]);
  rows.push(['added by one fetch()', fmt(inProcess['one fetch()']! - inProcess['answers by itself']!, 0), fmt(processes['one fetch()']! - processes['answers by itself']!, 0)]);
  const markdown = [
    `Median time per request, µs, requests sent one after another (${count} in one Runtime, ${Math.ceil(count / 4)} through runtime processes, after a warm-up). Through runtime processes every request also crosses from the bench's process to the caller's; the caller and the target are in different runtime processes, so each call crosses the control process both ways.`,
    '',
    table(['request', 'one Runtime (µs)', 'two runtime processes (µs)'], rows),
  ].join('\n');
  return { name: 'services', title: 'Service bindings: what a call costs', markdown, targets: [], data };
}

await runStandalone('services', main);
