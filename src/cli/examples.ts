// `isolet serve --examples`: a newcomer's first start deploys the example workers, so that
// `npm start` ends with workers answering on localhost. Each subfolder of the examples dir is
// one worker, read the way `isolet deploy` reads a project (wrangler.toml/json/jsonc, else
// worker.ts or index.ts) and deployed through the admin API's own path: parseDeployment, then
// Platform.deploy (validate -> store -> activate). Only an empty store gets them: a server that
// already has workers is someone's real deployment, and a restart must not add versions.

import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorker } from '../bundle/bundle.ts';
import { ApiError } from '../server/api-error.ts';
import { checkWorkerName, parseDeployment } from '../server/deployment.ts';
import type { RunningServer } from '../server/server.ts';
import type { Account } from '../store/store.ts';
import { findConfigFile, readConfig } from './config.ts';

/** The package's own examples/, wherever the process was started from. */
export const DEFAULT_EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));

/** The account the examples belong to. */
export const EXAMPLES_ACCOUNT = 'examples';

/** Entry files tried, in order, in a folder without a config that names `main`. */
const ENTRIES = ['worker.ts', 'index.ts', 'worker.js', 'index.js'];

export type ExampleResult =
  | { folder: string; name: string; url: string; notes: string[] }
  | { folder: string; error: string };

export type ExamplesOutcome =
  /** The store already had workers: nothing was deployed. */
  | { deployed: false; workers: number }
  | { deployed: true; examples: ExampleResult[] };

/** Deploys every subfolder of `dir` as a worker of the account `examples`, if the store has no workers yet. */
export async function deployExamples(server: RunningServer, dir: string): Promise<ExamplesOutcome> {
  const store = server.platform.store;
  const existing = await store.listWorkers();
  if (existing.length > 0) return { deployed: false, workers: existing.length };

  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules')
    .map((entry) => entry.name)
    .sort();
  let account: Account | undefined;
  const examples: ExampleResult[] = [];
  for (const folder of folders) {
    try {
      account ??= await examplesAccount(server);
      examples.push(await deployExample(server, account, join(dir, folder), folder));
    } catch (error) {
      examples.push({ folder, error: describe(error) });
    }
  }
  return { deployed: true, examples };
}

async function examplesAccount(server: RunningServer): Promise<Account> {
  const store = server.platform.store;
  const found = await store.findAccount(EXAMPLES_ACCOUNT);
  if (found !== undefined) return found;
  const account = await store.createAccount(EXAMPLES_ACCOUNT);
  server.log('info', 'admin', 'account created', { account: account.id, name: account.name });
  return account;
}

async function deployExample(server: RunningServer, account: Account, dir: string, folder: string): Promise<ExampleResult> {
  const configFile = findConfigFile(dir);
  const { config, notes } = configFile === undefined ? { config: undefined, notes: [] } : readConfig(configFile);
  const name = config?.name ?? folder;
  checkWorkerName(name);
  const entry = config?.main ?? ENTRIES.map((file) => join(dir, file)).find(isFile);
  if (entry === undefined) {
    throw new Error(`no entry: add a wrangler.toml with main = "src/index.ts", or a ${ENTRIES.slice(0, 2).join(' or ')}`);
  }
  if (!isFile(entry)) throw new Error(`no such file: ${relative(dir, entry)} (main in ${relative(dir, configFile!)})`);

  const { worker } = await bundleWorker(relative(dir, entry), { cwd: dir });
  const body: Record<string, unknown> = { ...worker, message: `example from ${folder}/` };
  if (config !== undefined) {
    if (Object.keys(config.vars).length > 0) body.vars = config.vars;
    if (Object.keys(config.limits).length > 0) body.limits = { ...config.limits };
    if (config.routes.length > 0) body.routes = config.routes;
    if (config.compatibilityDate !== undefined) body.compatibilityDate = config.compatibilityDate;
    if (config.compatibilityFlags !== undefined) body.compatibilityFlags = config.compatibilityFlags;
  }
  const deployment = parseDeployment(body, server.rules);
  // The operator's own deploys: held to the server's ceilings, not to an account's zones.
  await server.platform.deploy(name, account.id, deployment, 'admin', { checkZones: false });
  return { folder, name, url: server.workerUrl(name), notes };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // A rejected upload says where in the bundle (worker.js:line:col), when it knows.
  if (error instanceof ApiError && error.location !== undefined && !error.message.includes(error.location)) return `${error.location}: ${error.message}`;
  return error.message;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
