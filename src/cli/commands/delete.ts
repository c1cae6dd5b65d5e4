// `isolet delete <name>`: removes a worker with all its versions, routes and secrets. Asks
// first on a terminal; a script must say --yes.

import { createInterface } from 'node:readline';
import type { CliCommand, CliContext } from '../main.ts';
import { API_OPTIONS, API_OPTIONS_HELP, EXIT, EXIT_CODES_HELP, clientFrom, runApiCommand, writeJson } from '../api-client.ts';

const USAGE = `Usage: isolet delete <name> [--yes] [--api URL] [--token TOKEN] [--json]

Deletes worker <name>: every version, its routes and its secrets. It stops serving at once.
On a terminal it asks first; without one (scripts, CI) --yes is required.

Options:
  -y, --yes              Do not ask for confirmation
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
  (answering no to the question is exit 1)
`;

export const command: CliCommand = { usage: USAGE, run };

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({
    options: { ...API_OPTIONS, yes: { type: 'boolean', short: 'y', default: false } },
    allowPositionals: true,
  });
  if (positionals.length === 0) cli.usageError('missing <name>, the worker to delete');
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}'`);
  const name = positionals[0]!;
  return runApiCommand(cli, 'delete', async () => {
    const client = clientFrom(values);
    if (!values.yes) {
      if (!process.stdin.isTTY) cli.usageError(`refusing to delete ${name} without confirmation: no terminal to ask on. Fix: add --yes`);
      if (!(await confirm(`Delete worker ${name} with all its versions, routes and secrets? [y/N] `, cli))) {
        cli.stderr.write('Not deleted.\n');
        return EXIT.failed;
      }
    }
    await client.deleteWorker(name);
    if (values.json) writeJson(cli, { deleted: name });
    else cli.stdout.write(`Deleted ${name}\n`);
    return EXIT.ok;
  });
}

/** Asks on the terminal; yes only for 'y' or 'yes'. Ctrl-C or Ctrl-D is no. */
export function confirm(question: string, cli: CliContext): Promise<boolean> {
  const readline = createInterface({ input: process.stdin, output: cli.stderr });
  return new Promise((resolve) => {
    let answered = false;
    readline.on('SIGINT', () => readline.close());
    readline.on('close', () => {
      if (answered) return;
      cli.stderr.write('\n');
      resolve(false);
    });
    readline.question(question, (answer) => {
      answered = true;
      readline.close();
      resolve(/^y(es)?$/i.test(answer.trim()));
    });
  });
}
