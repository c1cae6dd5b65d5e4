// `isolet versions <name>`: a worker's deployed versions, newest first, the active one marked.

import type { CliCommand, CliContext } from '../main.ts';
import { API_OPTIONS, API_OPTIONS_HELP, EXIT, EXIT_CODES_HELP, clientFrom, runApiCommand, shortTime, table, writeJson } from '../api-client.ts';

const USAGE = `Usage: isolet versions <name> [--api URL] [--token TOKEN] [--json]

Lists the versions of worker <name>, newest first: number, content hash, when and by which
token it was deployed, its message; '*' marks the one serving. 'isolet rollback' switches
between them.

Options:
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
`;

export const command: CliCommand = { usage: USAGE, run };

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({ options: { ...API_OPTIONS }, allowPositionals: true });
  if (positionals.length === 0) cli.usageError('missing <name>, the worker whose versions to list');
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}'`);
  const name = positionals[0]!;
  return runApiCommand(cli, 'versions', async () => {
    const versions = await clientFrom(values).versions(name);
    if (values.json) {
      writeJson(cli, versions);
      return EXIT.ok;
    }
    if (versions.length === 0) {
      cli.stdout.write(`${name} has no versions.\n`);
      return EXIT.ok;
    }
    const rows = versions.map((version) => [
      version.active ? '*' : '',
      String(version.number),
      version.hash.slice(0, 12),
      shortTime(version.createdAt),
      version.author ?? '-',
      version.message ?? '',
    ]);
    cli.stdout.write(table(['', 'VERSION', 'HASH', 'CREATED', 'AUTHOR', 'MESSAGE'], rows));
    return EXIT.ok;
  });
}
