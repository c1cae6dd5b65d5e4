// `isolet list`: the workers this token can see, with their active version and routes.

import type { CliCommand, CliContext } from '../main.ts';
import { API_OPTIONS, API_OPTIONS_HELP, EXIT, EXIT_CODES_HELP, activeNumber, clientFrom, runApiCommand, shortTime, table, writeJson } from '../api-client.ts';

const USAGE = `Usage: isolet list [--account NAME] [--api URL] [--token TOKEN] [--json]

Lists the workers this token can see: name, active version, routes and when each last changed.

Options:
      --account <name>   Only this account's workers (for the operator's admin token, which sees all)
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
`;

export const command: CliCommand = { usage: USAGE, run };

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({ options: { ...API_OPTIONS, account: { type: 'string' } }, allowPositionals: true });
  if (positionals.length > 0) cli.usageError(`unexpected argument '${positionals[0]}'`);
  return runApiCommand(cli, 'list', async () => {
    const workers = await clientFrom(values).listWorkers(values.account);
    if (values.json) {
      writeJson(cli, workers);
      return EXIT.ok;
    }
    if (workers.length === 0) {
      cli.stdout.write("No workers yet. Deploy one with 'isolet deploy'.\n");
      return EXIT.ok;
    }
    const accounts = new Set(workers.map((worker) => worker.account));
    const header = ['NAME', 'VERSION', 'ROUTES', 'UPDATED'];
    // An admin token sees every account's workers: then say whose each one is.
    if (accounts.size > 1) header.splice(1, 0, 'ACCOUNT');
    const rows = [...workers]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((worker) => {
        const row = [worker.name, activeNumber(worker.activeVersion), (worker.routes ?? []).join(', ') || '-', shortTime(worker.updatedAt)];
        if (accounts.size > 1) row.splice(1, 0, String(worker.account));
        return row;
      });
    cli.stdout.write(table(header, rows));
    return EXIT.ok;
  });
}
