// `isolet deploy [entry]`: bundles a worker and uploads it as a new version, the way
// `wrangler deploy` does, reading name, main, vars, routes and limits from wrangler.toml /
// wrangler.json / wrangler.jsonc. `.dev.vars` stays local: it is for `isolet dev` only.

import type { SourceMap } from 'node:module';
import { relative, resolve } from 'node:path';
import { statSync } from 'node:fs';
import type { CliCommand, CliContext } from '../main.ts';
import { bundleWorker, BundleError, type BundledWorker } from '../../bundle/bundle.ts';
import { firstBundlePlace, mapBundlePlaces, originOf, splitSourceMap } from '../../bundle/source-map.ts';
import { ConfigError, loadConfig, serviceBindings, parseVarFlags } from '../config.ts';
import { prepareAssets, type AssetsUpload } from '../assets-upload.ts';
import { AssetsDirectoryError } from '../../assets/directory.ts';
import { saveDeployedMap } from '../deployed-maps.ts';
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

const USAGE = `Usage: isolet deploy [entry] [--name NAME] [--env ENV] [--config FILE] [--message TEXT] [--var KEY:VALUE]...

Bundles the worker (TypeScript or JavaScript; npm imports and .wasm files are bundled) and
uploads it as a new version, which starts serving at once. Reads wrangler.json, wrangler.jsonc
or wrangler.toml from the current directory (or --config) as wrangler does: name, main,
compatibility_date/flags, vars, routes/route, limits, kv_namespaces, [assets], [triggers] crons,
and the build settings (minify, define, alias, ...). Cron triggers belong to the version: a
config without [triggers] deploys a version without any. A key isolet does not support is
refused by name. Flags win over the file.
.dev.vars is not uploaded: use 'isolet secret put' for secrets. Static assets ([assets]
directory) are uploaded first, only the files the account does not hold yet; a project with
[assets] and no main deploys the assets alone.

Options:
      --name <name>      Worker name (default: name in the config)
  -e, --env <env>        Use the config's [env.<env>] section (the worker is named <name>-<env>
                         unless the section sets a name), as wrangler does
  -c, --config <file>    Config file (default: wrangler.json/.jsonc/.toml in this directory)
      --minify           Minify the bundle (as minify = true in the config)
  -m, --message <text>   What changed, kept with the version
      --var KEY:VALUE    Set env.KEY to VALUE, over the config's vars (repeatable)
      --account <name>   The account to deploy a new worker to (only with the operator's admin token)
      --dry-run          Bundle and check as the server would (the worker is loaded here),
                         print what would be uploaded, upload nothing
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
      env: { type: 'string', short: 'e' },
      minify: { type: 'boolean' },
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
      loaded = loadConfig({ cwd, configPath: values.config, env: values.env });
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
    if (entry === undefined && config.assets === undefined) {
      cli.usageError(`no entry: set main = "src/index.ts" in ${configName}, or pass the entry file as an argument (or set [assets] directory to deploy static files alone)`);
    }
    if (entry !== undefined && !isFile(entry)) {
      const shown = entryArg ?? `${relative(cwd, entry)} (main in ${configName})`;
      cli.stderr.write(`isolet deploy: no such file: ${shown}\n`);
      return EXIT.usage;
    }
    // Check the connection settings before bundling, so a missing token is said at once.
    const client = values['dry-run'] ? undefined : clientFrom(values);

    // Bundled with a source map that stays here: a location the server reports in the bundle
    // is mapped back to the tenant's own file:line:col.
    let bundled: BundledWorker | undefined;
    let sourceMap: SourceMap | undefined;
    if (entry !== undefined) {
      try {
        const result = await bundleWorker(relative(cwd, entry) || entry, { ...config.build, ...(values.minify ? { minify: true } : {}), cwd, sourcemap: true });
        for (const warning of result.warnings) cli.stderr.write(warning + '\n');
        ({ worker: bundled, map: sourceMap } = splitSourceMap(result.worker));
      } catch (error) {
        if (!(error instanceof BundleError)) throw error;
        cli.stderr.write(`${error.message}\nisolet deploy: ${name} was not deployed: the worker does not build\n`);
        return EXIT.failed;
      }
    }

    const deployment: Deployment = { ...bundled };
    let assets: AssetsUpload | undefined;
    if (config.assets !== undefined) {
      const { directory, binding, ...rules } = config.assets;
      if (binding !== undefined) deployment.bindings = { ...deployment.bindings, [binding]: { type: 'assets' } };
      try {
        assets = await prepareAssets(directory, {
          client,
          account: values.account,
          // On a terminal one line counts up; elsewhere (a CI log) each batch is a line.
          progress: (line, done) => cli.stderr.write((cli.stderr as NodeJS.WriteStream).isTTY === true ? `\r${line}${done ? '\n' : ''}` : `${line}\n`),
        });
      } catch (error) {
        if (!(error instanceof AssetsDirectoryError)) throw error;
        cli.stderr.write(`isolet deploy: ${error.message}\nisolet deploy: ${name} was not deployed\n`);
        return EXIT.usage;
      }
      for (const file of assets.unsupported) cli.stderr.write(`note: ${relative(cwd, directory) || '.'}/${file}: isolet does not apply ${file} files yet; it is not uploaded\n`);
      deployment.assets = { manifest: assets.manifest, ...rules };
    }
    const vars = { ...config.vars, ...flagVars.vars };
    if (Object.keys(vars).length > 0) deployment.vars = vars;
    if (Object.keys(config.limits).length > 0) deployment.limits = { ...config.limits };
    if (config.routes.length > 0) deployment.routes = config.routes;
    if (config.compatibilityDate !== undefined) deployment.compatibilityDate = config.compatibilityDate;
    if (config.crons !== undefined) deployment.crons = config.crons;
    if (config.compatibilityFlags !== undefined) deployment.compatibilityFlags = config.compatibilityFlags;
    if (config.services !== undefined && config.services.length > 0) deployment.bindings = { ...deployment.bindings, ...serviceBindings(config.services) };
    for (const { binding, id } of config.kvNamespaces ?? []) deployment.bindings = { ...deployment.bindings, [binding]: { type: 'kv', namespaceId: id } };
    if (values.message !== undefined) deployment.message = values.message;
    const bytes = Buffer.byteLength(JSON.stringify({ ...deployment, assets: undefined }));
    const assetsLine = assets === undefined ? '' : `${assets.files} asset${assets.files === 1 ? '' : 's'} (${formatBytes(assets.bytes)})`;

    if (!client) {
      // The checks the server would make of any deployment, the upload's loading included.
      const { checkDeployment } = await import('../deploy-check.ts');
      const problem = await checkDeployment(name, deployment);
      if (problem !== undefined) {
        cli.stderr.write(rejection(problem, sourceMap, cwd) + '\n');
        cli.stderr.write(`isolet deploy: ${name} would not be deployed (--dry-run: nothing was uploaded)\n`);
        return EXIT.failed;
      }
      if (values.json) writeJson(cli, { name, dryRun: true, bytes, deployment: { ...deployment, modules: undefined, script: undefined, assets: undefined }, assets: assets && { files: assets.files, bytes: assets.bytes } });
      else cli.stdout.write(`${name}: ${bundled === undefined ? '' : `bundled ${formatBytes(bytes)}`}${bundled !== undefined && assets ? ', ' : ''}${assetsLine}, not uploaded (--dry-run)\n`);
      return EXIT.ok;
    }

    let deployed;
    try {
      deployed = await client.deploy(name, deployment, values.account);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 400) throw error;
      cli.stderr.write(rejection({ message: describeApiError(error), location: error.location }, sourceMap, cwd) + '\n');
      cli.stderr.write(`isolet deploy: ${name} was not deployed (nothing was stored)\n`);
      return EXIT.failed;
    }
    const version = deployed.version;
    // Kept here for `isolet tail`, which maps the stack traces of this version with it.
    if (sourceMap && typeof version?.hash === 'string') {
      try {
        saveDeployedMap(cwd, name, version.hash, sourceMap);
      } catch (error) {
        cli.stderr.write(`note: cannot keep the source map for isolet tail: ${(error as Error).message}\n`);
      }
    }
    // The server knows its data plane's address and domain; the contract does not carry them
    // yet, so without `urls` in the answer the worker's own host is shown with a placeholder.
    const urls = Array.isArray(deployed.urls) ? deployed.urls : [`${name}.<domain>`, ...config.routes];
    const assetsJson = assets && { files: assets.files, bytes: assets.bytes, uploaded: assets.uploaded, uploadedBytes: assets.uploadedBytes };
    if (values.json) {
      writeJson(cli, { name, version, routes: config.routes, urls, ...(assetsJson ? { assets: assetsJson } : {}) });
      return EXIT.ok;
    }
    if (assets) cli.stdout.write(`Assets: ${assetsLine}, ${assets.uploaded} uploaded (${formatBytes(assets.uploadedBytes)}), ${assets.files - assets.uploaded} unchanged\n`);
    if (bundled !== undefined) cli.stdout.write(`Uploaded ${name} (${formatBytes(bytes)})\n`);
    cli.stdout.write(`Deployed ${name} version ${version.number} (${version.hash.slice(0, 8)})\n`);
    for (const url of urls) cli.stdout.write(`  ${url}\n`);
    return EXIT.ok;
  });
}

/**
 * A rejected upload as `file:line:col: message`. The server speaks of places in the bundle
 * (`worker.js:12:5`, as the error's location or in a stack trace); each is mapped back through
 * the source map to the tenant's own file, line and column.
 */
function rejection(problem: { message: string; location?: string | undefined }, map: SourceMap | undefined, cwd: string): string {
  let message = problem.message;
  // The message may repeat the location in front ("worker.js:1:5: SyntaxError: ...").
  if (problem.location !== undefined && message.startsWith(problem.location + ': ')) message = message.slice(problem.location.length + 2);
  const location = problem.location === undefined ? undefined : /^(.*):(\d+):(\d+)$/.exec(problem.location);
  const firstPlace = firstBundlePlace(message);
  message = mapBundlePlaces(message, map, cwd);
  let where: string | undefined;
  if (location) where = originOf(map, Number(location[2]), Number(location[3]), cwd) ?? problem.location;
  else if (problem.location !== undefined) where = problem.location;
  else if (firstPlace) where = originOf(map, firstPlace.line, firstPlace.column, cwd) ?? firstPlace.place;
  return where === undefined ? message : `${where}: ${message}`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
