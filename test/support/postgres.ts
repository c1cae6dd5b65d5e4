// PostgreSQL for the tests. ISOLET_TEST_DATABASE_URL names a server the tests may create
// databases on (.ci/run starts one); without it a throwaway server is started from the installed
// binaries (Debian's postgresql package), in a temporary directory, on 127.0.0.1 and a free
// port, and stopped when the test file ends. Without either the tests fail and say how to get one.
//
//   node test/support/postgres.ts start   prints `<url> <dir>` of a throwaway server left running
//   node test/support/postgres.ts stop <dir>

import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort } from './free-port.ts';

const NOT_INSTALLED =
  'PostgreSQL is needed for these tests and was not found: install its server (Debian: apt-get install -y postgresql), ' +
  'or set ISOLET_TEST_DATABASE_URL to a server where the tests may create databases (postgres://user@host:port/db).';

export interface ThrowawayPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  dir: string;
  port: number;
  /** Stops the server (fast shutdown: connections are cut), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) {
    try {
      return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    } catch {
      throw new Error(NOT_INSTALLED);
    }
  }
  return join(root, versions[0]!, 'bin');
}

/** PostgreSQL refuses to run as root: then it runs as the postgres user the package made. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(`${NOT_INSTALLED} (running as root, the server needs the 'postgres' user that the package creates)`);
  }
}

function run(bin: string, args: string[], user: { uid: number; gid: number } | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { ...user, stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const bin = binDir();
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'isolet-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  await run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], user);
  const port = await freePort();
  // A throwaway server: no fsync (a test's data need not survive a power cut), room for three
  // nodes' pools and the tests' own connections.
  const options = `-k ${dir} -h 127.0.0.1 -p ${port} -c fsync=off -c max_connections=300`;
  const pgCtl = join(bin, 'pg_ctl');
  const start = () => run(pgCtl, ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options, 'start'], user);
  const stop = () => run(pgCtl, ['-D', data, '-m', 'fast', '-w', 'stop'], user);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    port,
    start,
    stop,
    async destroy() {
      await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function stopThrowawayPostgres(dir: string): Promise<void> {
  await run(join(binDir(), 'pg_ctl'), ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop'], runAs());
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A PostgreSQL server for this test file: ISOLET_TEST_DATABASE_URL's, or a throwaway one.
 * Each `database()` is a new, empty database on it, dropped by `close()`.
 */
export class TestPostgres {
  readonly #server: Promise<{ url: string; own?: ThrowawayPostgres }>;
  readonly #databases: string[] = [];

  constructor() {
    const given = process.env.ISOLET_TEST_DATABASE_URL;
    this.#server = given ? Promise.resolve({ url: given }) : startThrowawayPostgres().then((own) => ({ url: own.url, own }));
    this.#server.catch(() => {});
  }

  /** The URL of a new empty database. */
  async database(): Promise<string> {
    const { url } = await this.#server;
    const name = `isolet_test_${randomBytes(6).toString('hex')}`;
    await this.#admin(url, `CREATE DATABASE ${name}`);
    this.#databases.push(name);
    const target = new URL(url);
    target.pathname = `/${name}`;
    return target.toString();
  }

  async close(): Promise<void> {
    let server;
    try {
      server = await this.#server;
    } catch {
      return;
    }
    for (const name of this.#databases.splice(0)) await this.#admin(server.url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await server.own?.destroy();
  }

  async #admin(url: string, statement: string): Promise<void> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  }
}

if (import.meta.main) {
  const [command, dir] = process.argv.slice(2);
  if (command === 'start') {
    const server = await startThrowawayPostgres();
    process.stdout.write(`${server.url} ${server.dir}\n`);
  } else if (command === 'stop' && dir) {
    await stopThrowawayPostgres(dir);
  } else {
    process.stderr.write('usage: node test/support/postgres.ts start | stop <dir>\n');
    process.exit(2);
  }
}
