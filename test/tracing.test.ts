// Traces: with an OTLP endpoint, a request's span and a client span for each fetch() under it
// reach the collector (here a local HTTP server that takes OTLP/HTTP JSON), whether the worker
// runs in the server's process or in a runtime process, which reports its spans to the control
// process: only that one talks to the collector.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { moduleDeployment, startTestServer } from './server-support.ts';
import { freePort } from './support/free-port.ts';
import { configuredTracesUrl, relayedRequestTrace, Tracing, tracesUrl, type SubrequestSpan } from '../src/observability/tracing.ts';
import { MESSAGES } from '../src/supervisor/messages.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}

const SERVER = 2;
const CLIENT = 3;

/** A collector: every span posted to /v1/traces, with the resource's attributes. */
async function collector(): Promise<{ url: string; spans: (OtlpSpan & { resource: Record<string, unknown> })[]; paths: string[]; close(): Promise<void> }> {
  const spans: (OtlpSpan & { resource: Record<string, unknown> })[] = [];
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '');
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => {
      assert.match(req.headers['content-type'] ?? '', /application\/json/);
      const body = JSON.parse(text) as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const resourceSpans of body.resourceSpans) {
        const resource = attributes(resourceSpans.resource.attributes);
        for (const scope of resourceSpans.scopeSpans) for (const span of scope.spans) spans.push({ ...span, resource });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    paths,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function attributes(list: OtlpSpan['attributes']): Record<string, unknown> {
  return Object.fromEntries(list.map(({ key, value }) => [key, Object.values(value)[0]]));
}

async function until<T>(find: () => T | undefined): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail('the spans never arrived');
}

/** A destination for the worker's fetch() that answers 'pong'. */
async function destination(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => res.end('pong'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ping?secret=1`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const FETCHING = `export default { async fetch(request, env) {
  const answer = await fetch(env.TARGET);
  return new Response(await answer.text() + ' via worker');
} };`;

for (const processes of [0, 1]) {
  test(`a request and its fetch() arrive as parent and child spans (${processes === 0 ? 'in process' : 'runtime process'})`, { timeout: 120_000 }, async (t) => {
    const otlp = await collector();
    const target = await destination();
    const server = await startTestServer({ processes, otlpEndpoint: otlp.url, traceBatchDelayMs: 50, egress: { allow: ['127.0.0.1'] } });
    t.after(async () => {
      await server.close();
      await target.close();
      await otlp.close();
    });
    const acme = await server.account('acme');
    const deployed = await server.api('PUT', '/v1/workers/caller', { token: acme.token, body: moduleDeployment(FETCHING, { vars: { TARGET: target.url } }) });
    assert.equal(deployed.status, 201, deployed.text);
    const answer = await server.request('caller.localhost', '/path?q=private');
    assert.equal(await answer.text(), 'pong via worker');

    const request = await until(() => otlp.spans.find((span) => span.kind === SERVER));
    const subrequest = await until(() => otlp.spans.find((span) => span.kind === CLIENT));
    assert.deepEqual(otlp.paths.every((path) => path === '/v1/traces'), true);
    assert.equal(request.name, 'GET caller');
    const own = attributes(request.attributes);
    assert.equal(own['isolet.worker'], 'caller');
    assert.equal(own['url.path'], '/path');
    assert.equal(Number(own['http.response.status_code']), 200);
    assert.equal(request.resource['service.name'], 'isolet');
    assert.equal(subrequest.traceId, request.traceId);
    assert.equal(subrequest.parentSpanId, request.spanId);
    const sub = attributes(subrequest.attributes);
    assert.equal(sub['server.address'], '127.0.0.1');
    assert.equal(sub['url.path'], '/ping');
    assert.equal(Number(sub['http.response.status_code']), 200);
    // Queries may hold secrets: no span has one.
    assert.doesNotMatch(JSON.stringify(otlp.spans), /secret=1|q=private/);
    // Only the control process sends spans; one a runtime process reported says which process made the fetch().
    assert.ok(otlp.spans.every((span) => span.resource['isolet.process'] === 'control'));
    // New code serves its first request in the untried process.
    if (processes === 1) assert.equal(sub['isolet.process'], 'untried/0');
  });
}

test('a traceparent that is malformed or not sampled starts no spans', async () => {
  const tracing = new Tracing({ url: 'http://127.0.0.1:9/v1/traces' });
  try {
    assert.equal(tracing.continueRequest(undefined), undefined);
    assert.equal(tracing.continueRequest('garbage'), undefined);
    assert.equal(tracing.continueRequest(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`), undefined);
    assert.equal(tracing.continueRequest(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`)?.traceparent, `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`);
    // Sampling: at 0 no request is traced.
    const none = new Tracing({ url: 'http://127.0.0.1:9/v1/traces', sampleRate: 0 });
    assert.equal(none.startRequest('w', { method: 'GET', url: 'http://w.localhost/', headers: [] }).trace, undefined);
    await none.shutdown();
  } finally {
    await tracing.shutdown();
  }
  assert.equal(tracesUrl('http://c:4318'), 'http://c:4318/v1/traces');
  assert.equal(tracesUrl('http://c:4318/v1/traces'), 'http://c:4318/v1/traces');
});

test('the traces URL: --otlp-endpoint and OTEL_EXPORTER_OTLP_ENDPOINT are bases, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given', () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318/', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/otlp/traces' };
  assert.equal(configuredTracesUrl(undefined, {}), undefined);
  assert.equal(configuredTracesUrl(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318/' }), 'http://base:4318/v1/traces');
  assert.equal(configuredTracesUrl(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318/prefix' }), 'http://base:4318/prefix/v1/traces');
  assert.equal(configuredTracesUrl(undefined, env), 'http://c:4318/otlp/traces');
  assert.equal(configuredTracesUrl(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/' }), 'http://c:4318/');
  assert.equal(configuredTracesUrl('http://flag:4318', env), 'http://flag:4318/v1/traces');
  // An empty variable is unset, as the specification reads it.
  assert.equal(configuredTracesUrl(undefined, { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' }), 'http://base:4318/v1/traces');
});

test('a runtime process reports a subrequest without its query; what it sends is checked as hostile', () => {
  const sent: SubrequestSpan[] = [];
  const traceparent = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
  assert.equal(relayedRequestTrace(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`, (span) => sent.push(span)), undefined, 'not sampled');
  const relayed = relayedRequestTrace(traceparent, (span) => sent.push(span))!;
  relayed.subrequest('GET', 'https://api.example.com:8443/v1/items?token=secret#x').end(404);
  assert.equal(sent.length, 1);
  const span = sent[0]!;
  assert.deepEqual({ ...span, startTime: 0, endTime: 0 }, { traceparent, method: 'GET', url: 'https://api.example.com:8443/v1/items', startTime: 0, endTime: 0, status: 404 });
  assert.ok(span.endTime >= span.startTime && span.startTime > Date.parse('2020-01-01'));
  assert.deepEqual(MESSAGES.span.check(JSON.parse(JSON.stringify(span))), span);
  for (const bad of [null, { ...span, traceparent: 'x'.repeat(56) }, { ...span, startTime: -1 }, { ...span, endTime: Infinity }, { ...span, status: 1.5 }, { ...span, url: 7 }, { ...span, error: 'e'.repeat(2000) }]) {
    assert.throws(() => MESSAGES.span.check(bad), /malformed message: (span|traceparent)/);
  }
});

test('spans a collector does not take are dropped with a warning, at most one a minute, saying how many', { timeout: 120_000 }, async () => {
  // A port nothing listens on: every export fails (after OpenTelemetry's own retries).
  const port = await freePort();
  const warnings: Record<string, unknown>[] = [];
  const tracing = new Tracing({ url: `http://127.0.0.1:${port}/v1/traces?key=secret`, batchDelayMs: 10, warn: (message, fields) => warnings.push({ message, ...fields }) });
  const spans = (count: number) => {
    for (let i = 0; i < count; i++) tracing.startRequest('w', { method: 'GET', url: 'http://w.localhost/', headers: [] }).end(200);
  };
  try {
    spans(3);
    await tracing.flush();
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.dropped, 3);
    assert.equal(warnings[0]!.collector, `http://127.0.0.1:${port}/v1/traces`);
    assert.match(String(warnings[0]!.message), new RegExp(`^3 trace spans were dropped: the collector at http://127\\.0\\.0\\.1:${port}/v1/traces did not take them \\(.+\\)\\. Check that it is up`));
    // Within the minute: counted, not said again.
    spans(2);
    await tracing.flush();
    assert.equal(warnings.length, 1);
  } finally {
    await tracing.shutdown();
  }
  // What was left unsaid is said when tracing stops.
  assert.equal(warnings.length, 2);
  assert.equal(warnings[1]!.dropped, 2);
  assert.doesNotMatch(JSON.stringify(warnings), /secret/);
});

test('without an endpoint nothing is traced: a collector the server could reach receives nothing', { timeout: 120_000 }, async (t) => {
  const otlp = await collector();
  const target = await destination();
  // The standard variable names the collector: `isolet serve` reads it, a server made without an
  // endpoint (the library's default) must not, nor may OpenTelemetry's exporter on its own.
  const before = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp.url;
  t.after(() => {
    if (before === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = before;
  });
  const server = await startTestServer({ processes: 1, traceBatchDelayMs: 10, egress: { allow: ['127.0.0.1'] } });
  t.after(async () => {
    await server.close();
    await target.close();
    await otlp.close();
  });
  const acme = await server.account('acme');
  assert.equal((await server.api('PUT', '/v1/workers/caller', { token: acme.token, body: moduleDeployment(FETCHING, { vars: { TARGET: target.url } }) })).status, 201);
  for (let i = 0; i < 3; i++) assert.equal(await (await server.request('caller.localhost', '/')).text(), 'pong via worker');
  await server.close();
  assert.deepEqual(otlp.paths, []);
  assert.deepEqual(otlp.spans, []);
});
