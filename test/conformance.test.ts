// The differential conformance suite's fast subset (the full run: `npm run conformance`).
// One workerd and one isolet serve the same probe workers and framework apps; every fast case
// sends the same request to both and must get the same answer, check by check, except where
// test/conformance/deviations.ts says otherwise (intended deviations, recorded findings, APIs
// being built). Cases of APIs being built are skipped here with their reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBoth, runCase, describeFailures, type Target } from './conformance/harness.ts';
import { conformanceCases, conformanceWorkers } from './conformance/cases.ts';
import { startEchoServer, type EchoServer } from './conformance/echo-server.ts';

let workerd: Target | undefined;
let isolet: Target | undefined;
let echo: EchoServer | undefined;
let startError: unknown;

before(async () => {
  echo = await startEchoServer();
  try {
    ({ workerd, isolet } = await startBoth(await conformanceWorkers()));
  } catch (error) {
    startError = error;
  }
});

after(async () => {
  await Promise.all([workerd?.close(), isolet?.close(), echo?.close()]);
});

// The case list needs the echo server's port only for fetch() cases, which are pending here;
// the ids and flags do not depend on it.
for (const c of conformanceCases(0)) {
  if (!c.fast) continue;
  test(`${c.area}: ${c.id}`, { skip: c.pending ? `pending: ${c.pending}` : false }, async () => {
    if (startError) throw startError;
    const request = conformanceCases(echo!.port).find((x) => x.id === c.id)!;
    const results = await runCase(request, workerd!, isolet!);
    const failures = results.filter((r) => r.outcome === 'fail');
    // workerd that stopped answering is a broken run, not a difference: what it printed says why.
    const unreachable = describeFailures(results).includes('request failed: connect');
    const said = unreachable && workerd!.output ? `\nworkerd's last output:\n${workerd!.output.slice(-3000)}` : '';
    assert.equal(failures.length, 0, `isolet differs from workerd (record it in test/conformance/deviations.ts if it is known):\n${describeFailures(results)}${said}`);
  });
}
