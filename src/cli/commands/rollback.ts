// `isolet rollback <name> [version]`: serve an earlier version again (by default the one
// before the active one). Versions are immutable; this only switches which one serves.

import type { CliCommand, CliContext } from '../main.ts';
import { API_OPTIONS, API_OPTIONS_HELP, EXIT, EXIT_CODES_HELP, clientFrom, runApiCommand, writeJson } from '../api-client.ts';

const USAGE = `Usage: isolet rollback <name> [version] [--api URL] [--token TOKEN] [--json]

Makes worker <name> serve an earlier version again, at once. [version] is a version number
(see 'isolet versions <name>') or id; without it, the version before the active one.

Options:
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
`;

export const command: CliCommand = { usage: USAGE, run };

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({ options: { ...API_OPTIONS }, allowPositionals: true });
  if (positionals.length === 0) cli.usageError('missing <name>, the worker to roll back');
  if (positionals.length > 2) cli.usageError(`unexpected argument '${positionals[2]}'`);
  const [name, versionArg] = positionals as [string, string | undefined];
  if (versionArg === '') cli.usageError('[version] is empty: give a version number or id');
  const version = versionArg === undefined ? undefined : /^\d+$/.test(versionArg) ? Number(versionArg) : versionArg;
  return runApiCommand(cli, 'rollback', async () => {
    const answer = await clientFrom(values).rollback(name, version);
    if (values.json) {
      writeJson(cli, answer);
      return EXIT.ok;
    }
    const active = answer.activeVersion;
    cli.stdout.write(`${name} now serves version ${active.number} (${active.hash.slice(0, 8)})${active.message ? `: ${active.message}` : ''}\n`);
    return EXIT.ok;
  });
}
