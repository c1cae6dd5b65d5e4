// The source map of the last upload of each worker from a project folder, kept in that folder
// (.isolet/source-maps/<name>.json) rather than on the server: the server never holds a
// tenant's original sources, and `isolet tail` run in the project maps stack traces of the
// version it finds active back to the source files, when that version is the one deployed here.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';

function fileOf(dir: string, name: string): string {
  return join(dir, '.isolet', 'source-maps', `${name}.json`);
}

/** Records the map of version `hash` of worker `name`, uploaded from `dir`. */
export function saveDeployedMap(dir: string, name: string, hash: string, map: SourceMap): void {
  mkdirSync(join(dir, '.isolet', 'source-maps'), { recursive: true });
  writeFileSync(fileOf(dir, name), JSON.stringify({ hash, map: map.payload }));
}

/** The map last recorded for `name` in `dir`, with the version hash it belongs to. */
export function loadDeployedMap(dir: string, name: string): { hash: string; map: SourceMap } | undefined {
  try {
    const saved = JSON.parse(readFileSync(fileOf(dir, name), 'utf8')) as { hash?: unknown; map?: unknown };
    if (typeof saved.hash !== 'string' || typeof saved.map !== 'object' || saved.map === null) return undefined;
    return { hash: saved.hash, map: new SourceMap(saved.map as ConstructorParameters<typeof SourceMap>[0]) };
  } catch {
    return undefined;
  }
}
