// The full differential conformance run: every case, pending ones included, against workerd
// and isolet; prints each difference and a pass rate per API area.
//
//   npm run conformance                      # everything
//   npm run conformance -- --only headers    # cases whose id starts with "headers"
//   npm run conformance -- --markdown        # also the per-area table for docs/COMPATIBILITY.md
//   npm run conformance -- --json out.json   # every check result
//   npm run conformance -- --verbose         # also list known differences and pending checks
//
// Exit status 1 when a check differs in a way deviations.ts does not record.
import { writeFileSync } from 'node:fs';
import { startBoth, runCases, describeFailures, COMPATIBILITY_DATE, type CheckResult } from './harness.ts';
import { conformanceCases, conformanceWorkers } from './cases.ts';
import { startEchoServer } from './echo-server.ts';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = option('--only');
const jsonOut = option('--json');

const echo = await startEchoServer();
const started = Date.now();
let results: CheckResult[] = [];
try {
  const { workerd, isolet } = await startBoth(await conformanceWorkers());
  try {
    const cases = conformanceCases(echo.port).filter((c) => only === undefined || c.id.startsWith(only));
    results = await runCases(cases, workerd, isolet);
  } finally {
    await Promise.all([workerd.close(), isolet.close()]);
  }
} finally {
  await echo.close();
}

const outcomes = ['pass', 'deviation', 'known', 'pending', 'fail'] as const;
type Row = Record<(typeof outcomes)[number], number> & { area: string; total: number };
const rows = new Map<string, Row>();
for (const r of results) {
  let row = rows.get(r.area);
  if (!row) rows.set(r.area, (row = { area: r.area, total: 0, pass: 0, deviation: 0, known: 0, pending: 0, fail: 0 }));
  row.total++;
  row[r.outcome]++;
}
const total: Row = { area: 'all', total: 0, pass: 0, deviation: 0, known: 0, pending: 0, fail: 0 };
for (const row of rows.values()) for (const key of ['total', ...outcomes] as const) total[key] += row[key];

/** Same as workerd: identical, or different only as an intended deviation allows. */
const rate = (row: Row) => (row.total === 0 ? '-' : `${(((row.pass + row.deviation) / row.total) * 100).toFixed(1)}%`);

if (args.includes('--verbose')) {
  console.log('Known differences (recorded findings):');
  console.log(describeFailures(results, ['known']) || '  none');
  console.log('Pending (APIs being built):');
  console.log(describeFailures(results, ['pending']) || '  none');
}
const failures = describeFailures(results);
if (failures) console.log(`Unrecorded differences:\n${failures}\n`);

const header = ['area', 'checks', 'same as workerd', 'identical', 'intended deviation', 'known difference', 'pending API', 'unrecorded'];
const table = [...rows.values(), total].map((row) => [row.area, row.total, rate(row), row.pass, row.deviation, row.known, row.pending, row.fail].map(String));
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
for (const row of table) console.log(line(row));
console.log(`\n${results.length} checks in ${((Date.now() - started) / 1000).toFixed(1)} s; workerd compatibilityDate ${COMPATIBILITY_DATE}.`);

if (args.includes('--markdown')) {
  console.log(`\n| ${header.join(' | ')} |\n|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const row of table) console.log(`| ${row.join(' | ')} |`);
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 1));
process.exitCode = total.fail > 0 ? 1 : 0;
