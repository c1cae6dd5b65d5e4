// `isolet kv namespace create|list|delete` and `isolet kv key put|get|list|delete`: an account's
// KV namespaces and their entries, through the admin API (docs/ADMIN_API.md, "KV"), or with
// --local the keys `isolet dev` keeps in .isolet/kv next to the config (src/cli/dev-kv.ts). A
// namespace is named by its id, or by the binding that names it in wrangler.toml (of --env's
// section, kv_namespaces not being inherited), as wrangler's `kv` commands do. Values are bytes:
// put sends a file or stdin unchanged, get writes the value to stdout unchanged.

import { readFile } from 'node:fs/promises';
import type { CliCommand, CliContext } from '../main.ts';
import { API_OPTIONS, API_OPTIONS_HELP, EXIT, EXIT_CODES_HELP, SetupError, clientFrom, runApiCommand, shortTime, table, writeJson, type AdminClient } from '../api-client.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { LocalKv, type KvKeys } from '../dev-kv.ts';
import { dirname } from 'node:path';
import { confirm } from './delete.ts';

const USAGE = `Usage: isolet kv namespace create <title> [--account NAME]
       isolet kv namespace list [--account NAME]
       isolet kv namespace delete <id> [--yes]
       isolet kv key put <key> [value] NAMESPACE [--path FILE] [--ttl SECONDS] [--expiration TIME] [--metadata JSON]
       isolet kv key get <key> NAMESPACE
       isolet kv key list NAMESPACE [--prefix TEXT] [--limit N] [--cursor CURSOR]
       isolet kv key delete <key> NAMESPACE
       [--local] [--api URL] [--token TOKEN] [--json]

Manages the account's KV namespaces and the keys in them. A worker reads a namespace through
a binding in wrangler.toml, with the id 'namespace create' prints:
  kv_namespaces = [{ binding = "MY_KV", id = "<id>" }]

NAMESPACE is --namespace-id <id>, or --binding <NAME> to take the id of that binding from
wrangler.toml (or --config; of its [env.<env>] section with --env). With --local, the key
commands read and write the keys 'isolet dev' keeps for the project (.isolet/kv/isolet.db next
to the config), to look at what a worker wrote or to seed it, with no server. 'key put' stores [value] as text, or the bytes of --path, or
stdin when neither is given; 'key get' writes the value to stdout as it is stored (with --json:
{"key", "value" (or "valueBase64" when it is not UTF-8), "metadata", "expiration"}). Keys are at
most 512 bytes, values 25 MiB, metadata 1024 bytes of JSON; --ttl is at least 60 seconds and
--expiration (seconds since the epoch) at least 60 seconds ahead. 'key list' prints every key
(all pages), or one page of --limit keys.

Options:
      --namespace-id <id>  The namespace (its id)
      --binding <NAME>     The namespace bound as NAME in the wrangler config
  -c, --config <file>      The wrangler config for --binding and --local (default: wrangler.json/.jsonc/.toml here)
  -e, --env <env>          --binding: the binding of the config's [env.<env>] section
      --local              key: isolet dev's keys for this project, not the server's
      --account <name>     The account (only with the operator's admin token)
      --path <file>        put: the value is this file's bytes
      --ttl <seconds>      put: the key expires this many seconds from now
      --expiration <time>  put: the key expires at this time (seconds since the epoch)
      --metadata <json>    put: JSON kept with the key (at most 1024 bytes)
      --prefix <text>      list: only keys that start with it
      --limit <n>          list: one page of at most n keys (1-1000), and the cursor of the next
      --cursor <cursor>    list: go on from a previous page
  -y, --yes                namespace delete: do not ask for confirmation
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
`;

export const command: CliCommand = { usage: USAGE, run };

const OPTIONS = {
  ...API_OPTIONS,
  'namespace-id': { type: 'string' },
  binding: { type: 'string' },
  config: { type: 'string', short: 'c' },
  env: { type: 'string', short: 'e' },
  local: { type: 'boolean', default: false },
  account: { type: 'string' },
  path: { type: 'string' },
  ttl: { type: 'string' },
  expiration: { type: 'string' },
  metadata: { type: 'string' },
  prefix: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  yes: { type: 'boolean', short: 'y', default: false },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(cli: CliContext) {
  return cli.parseArgs({ options: OPTIONS, allowPositionals: true });
}

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = parse(cli);
  const [group, action, ...rest] = positionals;
  if (group === undefined) cli.usageError("missing what to manage: 'namespace' or 'key'");
  if (group !== 'namespace' && group !== 'key') cli.usageError(`unknown '${group}': use 'namespace' or 'key'`);
  const actions = group === 'namespace' ? ['create', 'list', 'delete'] : ['put', 'get', 'list', 'delete'];
  if (action === undefined) cli.usageError(`missing what to do: ${actions.join(', ')}`);
  if (!actions.includes(action)) cli.usageError(`unknown action '${action}' for kv ${group}: use ${actions.join(', ')}`);
  const label = `kv ${group} ${action}`;
  if (values.local && group === 'namespace') {
    cli.usageError("--local is for 'kv key': isolet dev makes its local namespaces itself, under the ids wrangler.toml gives");
  }
  if (values.local && values.account !== undefined) cli.usageError('--local reads the project\'s own keys, which belong to no account: leave --account out');
  return runApiCommand(cli, label, async () => {
    if (group === 'namespace') return namespaceCommand(cli, action, rest, values);
    const keys = values.local ? new LocalKv(projectDir(values)) : clientFrom(values);
    try {
      return await keyCommand(cli, action, rest, values, keys);
    } finally {
      if (keys instanceof LocalKv) await keys.close();
    }
  });
}

/** Where isolet dev keeps the project's local KV: next to the config (the one given, or found here), else here. */
function projectDir(values: Values): string {
  const file = readConfigFor(values).file;
  return file === undefined ? process.cwd() : dirname(file);
}

function readConfigFor(values: Values) {
  try {
    return loadConfig({ cwd: process.cwd(), configPath: values.config, env: values.env }).config;
  } catch (error) {
    if (error instanceof ConfigError) throw new SetupError(error.message);
    throw error;
  }
}

async function namespaceCommand(cli: CliContext, action: string, args: string[], values: Values): Promise<number> {
  const client = clientFrom(values);
  if (action === 'list') {
    expectArgs(cli, args, 0, '');
    const namespaces = await client.listKvNamespaces(values.account);
    if (values.json) writeJson(cli, namespaces);
    else if (namespaces.length === 0) cli.stdout.write("No KV namespaces: make one with 'isolet kv namespace create <title>'.\n");
    else cli.stdout.write(table(['ID', 'TITLE', 'ACCOUNT', 'CREATED'], namespaces.map((n) => [n.id, n.title, n.account, shortTime(n.createdAt)])));
    return EXIT.ok;
  }
  if (action === 'create') {
    const [title] = expectArgs(cli, args, 1, '<title>, a name for the namespace');
    const namespace = await client.createKvNamespace(title!, values.account);
    if (values.json) {
      writeJson(cli, namespace);
      return EXIT.ok;
    }
    const binding = title!.toUpperCase().replace(/[^A-Z0-9_]+/g, '_').replace(/^(?=\d)/, '_');
    cli.stdout.write(`Created KV namespace '${namespace.title}' with id ${namespace.id}\n`);
    cli.stdout.write(`Bind it in wrangler.toml:\n  kv_namespaces = [{ binding = "${binding}", id = "${namespace.id}" }]\n`);
    return EXIT.ok;
  }
  const [id] = expectArgs(cli, args, 1, '<id>, the namespace to delete');
  if (!values.yes) {
    if (!process.stdin.isTTY) cli.usageError(`refusing to delete the namespace ${id} without confirmation: no terminal to ask on. Fix: add --yes`);
    if (!(await confirm(`Delete KV namespace ${id} with every key in it? [y/N] `, cli))) {
      cli.stderr.write('Not deleted.\n');
      return EXIT.failed;
    }
  }
  await client.deleteKvNamespace(id!);
  if (values.json) writeJson(cli, { deleted: id });
  else cli.stdout.write(`Deleted KV namespace ${id}\n`);
  return EXIT.ok;
}

async function keyCommand(cli: CliContext, action: string, args: string[], values: Values, client: KvKeys): Promise<number> {
  if (action === 'list') {
    expectArgs(cli, args, 0, '');
    return listKeys(cli, client, namespaceOf(cli, values), values);
  }
  if (action === 'put') {
    if (args.length === 0) cli.usageError('missing <key>, the key to put');
    if (args.length > 2) cli.usageError(`unexpected argument '${args[2]}'`);
    const [key, text] = args;
    if (text !== undefined && values.path !== undefined) cli.usageError('give the value as an argument or with --path, not both');
    const expirationTtl = wholeNumber(cli, values.ttl, '--ttl');
    const expiration = wholeNumber(cli, values.expiration, '--expiration');
    if (expirationTtl !== undefined && expiration !== undefined) cli.usageError('give --ttl or --expiration, not both');
    if (values.metadata !== undefined) {
      try {
        JSON.parse(values.metadata);
      } catch {
        cli.usageError(`--metadata must be JSON, e.g. --metadata '{"type":"user"}', not '${values.metadata}'`);
      }
    }
    const namespace = namespaceOf(cli, values);
    const value = text !== undefined ? new TextEncoder().encode(text) : values.path !== undefined ? await readValueFile(values.path) : await readStdin(cli);
    await client.putKvValue(namespace, key!, value, { expiration, expirationTtl, metadata: values.metadata });
    if (values.json) writeJson(cli, { namespace, key, bytes: value.byteLength });
    else cli.stderr.write(`Stored ${key} (${value.byteLength} bytes) in ${namespace}\n`);
    return EXIT.ok;
  }
  const [key] = expectArgs(cli, args, 1, `<key>, the key to ${action}`);
  const namespace = namespaceOf(cli, values);
  if (action === 'delete') {
    await client.deleteKvValue(namespace, key!);
    if (values.json) writeJson(cli, { namespace, key, deleted: true });
    else cli.stderr.write(`Deleted ${key} from ${namespace}\n`);
    return EXIT.ok;
  }
  const value = await client.getKvValue(namespace, key!);
  if (values.json) {
    const { metadata, expiration } = await client.getKvMetadata(namespace, key!);
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    let shown: { value: string } | { valueBase64: string };
    try {
      shown = { value: text.decode(value) };
    } catch {
      shown = { valueBase64: Buffer.from(value).toString('base64') };
    }
    writeJson(cli, { key, ...shown, metadata, expiration });
    return EXIT.ok;
  }
  await new Promise<void>((resolve, reject) => cli.stdout.write(value, (error) => (error ? reject(error) : resolve())));
  return EXIT.ok;
}

async function listKeys(cli: CliContext, client: KvKeys, namespace: string, values: Values): Promise<number> {
  const limit = wholeNumber(cli, values.limit, '--limit');
  if (limit !== undefined && (limit < 1 || limit > 1000)) cli.usageError(`--limit must be from 1 to 1000, not ${limit}`);
  const options = { prefix: values.prefix, limit, cursor: values.cursor };
  const keys: Awaited<ReturnType<AdminClient['listKvKeys']>>['keys'] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await client.listKvKeys(namespace, { ...options, cursor: cursor ?? options.cursor });
    keys.push(...page.keys);
    cursor = page.list_complete ? undefined : page.cursor;
    // With --limit, one page; without, every page.
    if (cursor === undefined || limit !== undefined) break;
  }
  if (values.json) writeJson(cli, limit === undefined ? keys : { keys, list_complete: cursor === undefined, ...(cursor === undefined ? {} : { cursor }) });
  else if (keys.length === 0) cli.stderr.write(`No keys${values.prefix === undefined ? '' : ` starting with '${values.prefix}'`} in ${namespace}.\n`);
  else {
    const expires = (seconds?: number) => (seconds === undefined ? '-' : shortTime(new Date(seconds * 1000).toISOString()));
    cli.stdout.write(table(['KEY', 'EXPIRES', 'METADATA'], keys.map((k) => [k.name, expires(k.expiration), k.metadata === undefined ? '-' : JSON.stringify(k.metadata)])));
  }
  if (!values.json && cursor !== undefined) cli.stderr.write(`More keys follow: --cursor ${cursor}\n`);
  return EXIT.ok;
}

/** The namespace id from --namespace-id, or from --binding in the wrangler config. */
function namespaceOf(cli: CliContext, values: Values): string {
  const id = values['namespace-id'];
  if (id !== undefined && values.binding !== undefined) cli.usageError('give --namespace-id or --binding, not both');
  if (id !== undefined) return id;
  if (values.binding === undefined) cli.usageError('say which namespace: --namespace-id <id>, or --binding <NAME> of kv_namespaces in wrangler.toml');
  const config = readConfigFor(values);
  const found = config.kvNamespaces?.find((n) => n.binding === values.binding);
  if (found === undefined) {
    const known = (config.kvNamespaces ?? []).map((n) => n.binding);
    // kv_namespaces is not inherited by an [env.NAME] section, as in wrangler.
    const where = `${config.file ?? 'a wrangler config (none found here)'}${values.env === undefined ? '' : ` [env.${values.env}]`}`;
    throw new SetupError(
      `no KV binding '${values.binding}' in ${where}` +
        (known.length === 0 ? '. Fix: add kv_namespaces = [{ binding = "...", id = "..." }]' : `: it has ${known.join(', ')}`),
    );
  }
  return found.id;
}

function expectArgs(cli: CliContext, args: string[], count: number, what: string): string[] {
  if (args.length < count) cli.usageError(`missing ${what}`);
  if (args.length > count) cli.usageError(`unexpected argument '${args[count]}'`);
  return args;
}

function wholeNumber(cli: CliContext, text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) cli.usageError(`${flag} takes a whole number, not '${text}'`);
  return Number(text);
}

async function readValueFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new SetupError(`cannot read --path ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

async function readStdin(cli: CliContext): Promise<Uint8Array> {
  if (process.stdin.isTTY) cli.usageError('missing the value: give it as an argument, with --path FILE, or on stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
