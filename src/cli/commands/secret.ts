// `isolet secret put|list|delete`: a worker's secrets, which it sees in `env` like vars but
// whose values the API never shows again. A value comes from stdin, so it stays out of shell
// history and process lists; on a terminal it is typed without echo.

import type { CliCommand, CliContext } from '../main.ts';
import { API_OPTIONS, API_OPTIONS_HELP, EXIT, EXIT_CODES_HELP, clientFrom, runApiCommand, shortTime, table, writeJson } from '../api-client.ts';

const USAGE = `Usage: isolet secret put <name> <KEY>     (the value is read from stdin)
       isolet secret list <name>
       isolet secret delete <name> <KEY>
       [--api URL] [--token TOKEN] [--json]

Manages the secrets of worker <name>: env.KEY in the worker, like a var, but the value is
stored apart and never shown again. 'put' reads the value from stdin (one trailing newline is
dropped), or asks for it without echo on a terminal:
  printf %s "$DATABASE_URL" | isolet secret put my-worker DATABASE_URL
The worker sees a new value from its next request on.

Options:
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
`;

export const command: CliCommand = { usage: USAGE, run };

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({ options: { ...API_OPTIONS }, allowPositionals: true });
  const [action, name, key, extra] = positionals;
  if (action === undefined) cli.usageError('missing what to do: put, list or delete');
  if (action !== 'put' && action !== 'list' && action !== 'delete') cli.usageError(`unknown action '${action}': use put, list or delete`);
  if (name === undefined) cli.usageError(`missing <name>, the worker whose secrets to ${action}`);
  if (action === 'list' && key !== undefined) cli.usageError(`unexpected argument '${key}'`);
  if (action !== 'list' && key === undefined) cli.usageError(`missing <KEY>, the name of the secret to ${action}`);
  if (extra !== undefined) cli.usageError(`unexpected argument '${extra}'${action === 'put' ? ' (the value is read from stdin)' : ''}`);

  return runApiCommand(cli, `secret ${action}`, async () => {
    const client = clientFrom(values);
    if (action === 'list') {
      const secrets = await client.listSecrets(name);
      if (values.json) writeJson(cli, secrets);
      else if (secrets.length === 0) cli.stdout.write(`${name} has no secrets.\n`);
      else cli.stdout.write(table(['NAME', 'UPDATED'], secrets.map((secret) => [secret.name, shortTime(secret.updatedAt)])));
      return EXIT.ok;
    }
    if (action === 'delete') {
      await client.deleteSecret(name, key!);
      if (values.json) writeJson(cli, { worker: name, secret: key, deleted: true });
      else cli.stdout.write(`Deleted secret ${key} of ${name}\n`);
      return EXIT.ok;
    }
    const value = process.stdin.isTTY ? await promptHidden(`Value of ${key} for ${name}: `, cli) : await readStdin();
    if (value === undefined) {
      cli.stderr.write('Cancelled, nothing stored.\n');
      return EXIT.failed;
    }
    await client.putSecret(name, key!, value);
    if (values.json) writeJson(cli, { worker: name, secret: key, updated: true });
    else cli.stdout.write(`Stored secret ${key} of ${name}\n`);
    return EXIT.ok;
  });
}

/** All of stdin, less one trailing newline (what `echo` and here-strings add). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Reads a line from the terminal without echoing it; undefined on Ctrl-C or Ctrl-D. */
function promptHidden(prompt: string, cli: CliContext): Promise<string | undefined> {
  const input = process.stdin;
  cli.stderr.write(prompt);
  return new Promise((resolve) => {
    let value = '';
    const done = (result: string | undefined) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      cli.stderr.write('\n');
      resolve(result);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString('utf8')) {
        if (char === '\r' || char === '\n') return done(value);
        if (char === '\u0003') return done(undefined); // Ctrl-C
        if (char === '\u0004') return done(value === '' ? undefined : value); // Ctrl-D
        if (char === '\u007f' || char === '\b') value = [...value].slice(0, -1).join('');
        else if (char >= ' ') value += char;
      }
    };
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}
