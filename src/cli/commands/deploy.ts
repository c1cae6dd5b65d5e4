// `isolet deploy [entry]`: bundles a worker and uploads it as a new version, the way
// `wrangler deploy` does, reading name, main, vars, routes and limits from wrangler.toml /
// wrangler.json / wrangler.jsonc. `.dev.vars` stays local: it is for `isolet dev` only.

import { SourceMap } from 'node:module';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statSync } from 'node:fs';
import type { CliCommand, CliContext } from '../main.ts';
import { bundleWorker, BundleError, type BundledWorker } from '../../bundle/bundle.ts';
import { ConfigError, loadConfig, parseVarFlags } from '../config.ts';
import {
  API_OPTIONS,
  API_OPTIONS_HELP,
  ApiError,
  EXIT,
  EXIT_CODES_HELP,
  clientFrom,
  describeApiError,
  runApiCommand,
  writeJson,
  type Deployment,
} from '../api-client.ts';

/** Worker names are DNS labels, as the server requires (they become the host `<name>.<domain>`). */
const WORKER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const USAGE = `Usage: isolet deploy [entry] [--name NAME] [--config FILE] [--message TEXT] [--var KEY:VALUE]...

Bundles the worker (TypeScript or JavaScript; npm imports are bundled) and uploads it as a new
version, which starts serving at once. Reads wrangler.json, wrangler.jsonc or wrangler.toml
from the current directory (or --config): name, main, compatibility_date, vars, routes/route,
limits.cpu_ms and kv_namespaces. Flags win over the file. .dev.vars is not uploaded: use
'isolet secret put' for secrets.

Options:
      --name <name>      Worker name (default: name in the config)
  -c, --config <file>    Config file (default: wrangler.json/.jsonc/.toml in this directory)
  -m, --message <text>   What changed, kept with the version
      --var KEY:VALUE    Set env.KEY to VALUE, over the config's vars (repeatable)
      --account <name>   The account to deploy a new worker to (only with the operator's admin token)
      --dry-run          Bundle and check, print what would be uploaded, upload nothing
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
  (a worker that does not build, or that the server rejects, is exit 1)
`;

export const command: CliCommand = { usage: USAGE, run };

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({
    options: {
      ...API_OPTIONS,
      name: { type: 'string' },
      config: { type: 'string', short: 'c' },
      message: { type: 'string', short: 'm' },
      var: { type: 'string', multiple: true, default: [] },
      account: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}'`);
  const flagVars = parseVarFlags(values.var);
  if ('bad' in flagVars) cli.usageError(`--var takes KEY:VALUE, not '${flagVars.bad}'`);

  return runApiCommand(cli, 'deploy', async () => {
    const cwd = process.cwd();
    let loaded;
    try {
      loaded = loadConfig({ cwd, configPath: values.config });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      cli.stderr.write(`isolet deploy: ${error.message}\n`);
      return EXIT.usage;
    }
    const { config, notes } = loaded;
    for (const note of notes) cli.stderr.write(note + '\n');
    const configName = config.file === undefined ? 'wrangler.toml' : relative(cwd, config.file) || config.file;

    const name = values.name ?? config.name;
    if (name === undefined) {
      cli.usageError(`no worker name: set name = "my-worker" in ${configName}, or pass --name my-worker`);
    }
    if (!WORKER_NAME.test(name)) {
      const where = values.name !== undefined ? '--name' : `${configName}: name`;
      cli.stderr.write(
        `isolet deploy: ${where}: '${name}' is not a valid worker name. Fix: use 1-63 lowercase letters, digits or '-', ` +
          "starting and ending with a letter or digit (it becomes the host '<name>.<domain>')\n",
      );
      return EXIT.usage;
    }
    const entryArg = positionals[0];
    const entry = entryArg !== undefined ? resolve(cwd, entryArg) : config.main;
    if (entry === undefined) {
      cli.usageError(`no entry: set main = "src/index.ts" in ${configName}, or pass the entry file as an argument`);
    }
    if (!isFile(entry)) {
      const shown = entryArg ?? `${relative(cwd, entry)} (main in ${configName})`;
      cli.stderr.write(`isolet deploy: no such file: ${shown}\n`);
      return EXIT.usage;
    }
    // Check the connection settings before bundling, so a missing token is said at once.
    const client = values['dry-run'] ? undefined : clientFrom(values);

    // Bundled with a source map that stays here: a location the server reports in the bundle
    // is mapped back to the tenant's own file:line:col.
    let bundled: BundledWorker;
    let sourceMap: SourceMap | undefined;
    try {
      const result = await bundleWorker(relative(cwd, entry) || entry, { cwd, sourcemap: true });
      for (const warning of result.warnings) cli.stderr.write(warning + '\n');
      ({ worker: bundled, map: sourceMap } = splitSourceMap(result.worker));
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      cli.stderr.write(`${error.message}\nisolet deploy: ${name} was not deployed: the worker does not build\n`);
      return EXIT.failed;
    }

    const deployment: Deployment = { ...bundled };
    const vars = { ...config.vars, ...flagVars.vars };
    if (Object.keys(vars).length > 0) deployment.vars = vars;
    if (config.limits.cpuMs !== undefined) deployment.limits = { cpuMs: config.limits.cpuMs };
    if (config.routes.length > 0) deployment.routes = config.routes;
    if (config.compatibilityDate !== undefined) deployment.compatibilityDate = config.compatibilityDate;
    if (config.kvNamespaces.length > 0) {
      deployment.bindings = Object.fromEntries(config.kvNamespaces.map(({ binding, id }) => [binding, { type: 'kv', namespaceId: id }]));
    }
    if (values.message !== undefined) deployment.message = values.message;
    const bytes = Buffer.byteLength(JSON.stringify(deployment));

    if (!client) {
      if (values.json) writeJson(cli, { name, dryRun: true, bytes, deployment: { ...deployment, modules: undefined, script: undefined } });
      else cli.stdout.write(`${name}: bundled ${formatBytes(bytes)}, not uploaded (--dry-run)\n`);
      return EXIT.ok;
    }

    let deployed;
    try {
      deployed = await client.deploy(name, deployment, values.account);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 400) throw error;
      cli.stderr.write(rejection(error, sourceMap, cwd) + '\n');
      cli.stderr.write(`isolet deploy: ${name} was not deployed (nothing was stored)\n`);
      return EXIT.failed;
    }
    const version = deployed.version;
    // The server knows its data plane's address and domain; the contract does not carry them
    // yet, so without `urls` in the answer the worker's own host is shown with a placeholder.
    const urls = Array.isArray(deployed.urls) ? deployed.urls : [`${name}.<domain>`, ...config.routes];
    if (values.json) {
      writeJson(cli, { name, version, routes: config.routes, urls });
      return EXIT.ok;
    }
    cli.stdout.write(`Uploaded ${name} (${formatBytes(bytes)})\n`);
    cli.stdout.write(`Deployed ${name} version ${version.number} (${version.hash.slice(0, 8)})\n`);
    for (const url of urls) cli.stdout.write(`  ${url}\n`);
    return EXIT.ok;
  });
}

/** Takes the inline source map off the bundle (the upload does not need it) and parses it. */
function splitSourceMap(worker: BundledWorker): { worker: BundledWorker; map?: SourceMap } {
  const pattern = /\n\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/;
  const strip = (source: string): { source: string; map?: SourceMap } => {
    const match = pattern.exec(source);
    if (!match) return { source };
    let map: SourceMap | undefined;
    try {
      map = new SourceMap(JSON.parse(Buffer.from(match[1]!, 'base64').toString('utf8')));
    } catch {
      map = undefined;
    }
    return { source: source.slice(0, match.index) + '\n', map };
  };
  if ('script' in worker) {
    const { source, map } = strip(worker.script);
    return { worker: { script: source }, map };
  }
  let map: SourceMap | undefined;
  const modules = worker.modules.map((module) => {
    if (module.name !== worker.main) return module;
    const stripped = strip(module.source);
    map = stripped.map;
    return { name: module.name, source: stripped.source };
  });
  return { worker: { modules, main: worker.main }, map };
}

/**
 * A rejected upload as `file:line:col: message`. The server speaks of places in the bundle
 * (`worker.js:12:5`, as the error's location or in a stack trace); each is mapped back through
 * the source map to the tenant's own file, line and column.
 */
function rejection(error: ApiError, map: SourceMap | undefined, cwd: string): string {
  const toSource = (module: string, line: number, column: number): string => {
    if (map) {
      const origin = map.findOrigin(line, column);
      if ('fileName' in origin && origin.fileName) {
        let file = origin.fileName;
        if (file.startsWith('file://')) file = fileURLToPath(file);
        if (isAbsolute(file)) file = relative(cwd, file);
        return `${file}:${origin.lineNumber}:${origin.columnNumber}`;
      }
    }
    return `${module}:${line}:${column}`;
  };
  let message = describeApiError(error);
  const location = error.location === undefined ? undefined : /^(.*):(\d+):(\d+)$/.exec(error.location);
  // The message may repeat the location in front ("worker.js:1:5: SyntaxError: ...").
  if (error.location !== undefined && message.startsWith(error.location + ': ')) message = message.slice(error.location.length + 2);
  let first: string | undefined;
  message = message.replace(new RegExp(`\\b(${escapeRegExp(BUNDLE_MODULE)}):(\\d+):(\\d+)`, 'g'), (_match, module: string, line: string, column: string) => {
    const mapped = toSource(module, Number(line), Number(column));
    first ??= mapped;
    return mapped;
  });
  const where = location ? toSource(location[1]!, Number(location[2]), Number(location[3])) : (error.location ?? first);
  return where === undefined ? message : `${where}: ${message}`;
}

/** The module name bundleWorker gives the bundle, which the server's messages refer to. */
const BUNDLE_MODULE = 'worker.js';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function formatBytes(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
