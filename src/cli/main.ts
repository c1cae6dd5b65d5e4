// The isolet CLI (bin/isolet.js imports this file under Node 24). It finds the subcommand,
// parses its flags with node:util parseArgs and runs it. Each subcommand is one file in
// ./commands/ exporting `command: CliCommand`; adding one means adding that file and one line
// to COMMANDS. Commands load lazily (their one-line summaries live here), so `isolet version`
// and `isolet help` never load the runtime.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { describeIsolatedVmBuild } from '../runtime/native-build.ts';

/** What a subcommand module exports as `command`. */
export interface CliCommand {
  /** The full help text of `isolet <name> --help`, starting with the usage line. */
  usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[], cli: CliContext): Promise<number>;
}

export interface CliContext {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /**
   * parseArgs over this command's arguments, strict, with `--help`/`-h` handled for it; a
   * parse error becomes a usage error (stderr, exit 2).
   */
  parseArgs<T extends Omit<ParseArgsConfig, 'args' | 'strict'>>(config: T): ReturnType<typeof parseArgs<T & { strict: true }>>;
  /** Stops the command with `message` and its usage on stderr, exit code 2. */
  usageError(message: string): never;
}

interface CommandEntry {
  /** One line for the command list in `isolet help`. */
  summary: string;
  load: () => Promise<{ command: CliCommand }>;
}

/** Subcommands in help order. `help` and `version` are built in below. */
const COMMANDS: Record<string, CommandEntry> = {
  dev: { summary: 'Run a worker locally and reload it on change', load: () => import('./commands/dev.ts') },
  serve: { summary: 'Serve deployed workers and the admin API', load: () => import('./commands/serve.ts') },
  deploy: { summary: 'Bundle a worker and upload it as a new version', load: () => import('./commands/deploy.ts') },
  list: { summary: 'List the workers on the server', load: () => import('./commands/list.ts') },
  versions: { summary: "List a worker's versions", load: () => import('./commands/versions.ts') },
  rollback: { summary: 'Serve an earlier version of a worker again', load: () => import('./commands/rollback.ts') },
  delete: { summary: 'Delete a worker with its versions, routes and secrets', load: () => import('./commands/delete.ts') },
  secret: { summary: "Set, list or delete a worker's secrets", load: () => import('./commands/secret.ts') },
  tail: { summary: "Stream a worker's logs as they happen", load: () => import('./commands/tail.ts') },
  kv: { summary: 'Manage KV namespaces and their keys', load: () => import('./commands/kv.ts') },
};

/** Thrown to stop a command with a usage error (exit 2). */
class UsageError extends Error {
  override name = 'UsageError';
}

/** Thrown by parseArgs for --help: print the command's usage, exit 0. */
class HelpRequested extends Error {}

const OUT = process.stdout;
const ERR = process.stderr;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function versionText(): string {
  return `isolet ${version()}\nnode ${process.versions.node}\nv8 ${process.versions.v8}\n${describeIsolatedVmBuild()}\n`;
}

function generalUsage(): string {
  const lines = ['Usage: isolet <command> [options]', '', 'Commands:'];
  const rows: [string, string][] = Object.entries(COMMANDS).map(([name, { summary }]) => [name, summary]);
  rows.push(['version', 'Print the isolet, Node.js, V8 and isolated-vm versions']);
  rows.push(['help [command]', 'Show help for isolet or for one command']);
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, summary] of rows) lines.push(`  ${name.padEnd(width)}  ${summary}`);
  lines.push('', "Run 'isolet <command> --help' for a command's options.", '');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;

  if (name === undefined) {
    ERR.write(generalUsage());
    return 2;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const topic = rest[0];
    if (topic === undefined) {
      OUT.write(generalUsage());
      return 0;
    }
    const entry = Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
    if (entry) {
      OUT.write((await entry.load()).command.usage);
      return 0;
    }
    if (topic === 'version') {
      OUT.write('Usage: isolet version\n\nPrints the isolet, Node.js, V8 and isolated-vm versions (and whether isolated-vm is isolet\'s build).\n');
      return 0;
    }
    ERR.write(`isolet: unknown command '${topic}'\n\n${generalUsage()}`);
    return 2;
  }
  if (name === 'version' || name === '--version' || name === '-v') {
    if (rest.length > 0) {
      ERR.write(`isolet version: unexpected argument '${rest[0]}'\n\nUsage: isolet version\n`);
      return 2;
    }
    OUT.write(versionText());
    return 0;
  }

  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    ERR.write(`isolet: unknown ${name.startsWith('-') ? 'option' : 'command'} '${name}'\n\n${generalUsage()}`);
    return 2;
  }
  const { command } = await entry.load();
  const cli: CliContext = {
    stdout: OUT,
    stderr: ERR,
    parseArgs(config) {
      const options = { ...config.options, help: { type: 'boolean', short: 'h' } } as const;
      let parsed;
      try {
        parsed = parseArgs({ ...config, options, args: rest, strict: true });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      if ((parsed.values as { help?: boolean }).help) throw new HelpRequested();
      return parsed as ReturnType<typeof parseArgs<typeof config & { strict: true }>>;
    },
    usageError(message) {
      throw new UsageError(message);
    },
  };
  try {
    return await command.run(rest, cli);
  } catch (error) {
    if (error instanceof HelpRequested) {
      OUT.write(command.usage);
      return 0;
    }
    if (error instanceof UsageError) {
      ERR.write(`isolet ${name}: ${error.message}\n\n${command.usage}`);
      return 2;
    }
    throw error;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  ERR.write(`isolet: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
// Commands resolve once their work is over (dev: after SIGINT/SIGTERM and a clean shutdown);
// whatever is still holding the event loop then (isolate threads, idle sockets) must not keep
// the process alive.
process.exit();
