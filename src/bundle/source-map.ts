// The source map of a bundle, kept on the host: places in the bundle (`worker.js:12:5`, in a
// stack trace or a load error) are written back as the tenant's own `src/index.ts:3:11`, and
// the platform's own frames are left out of what the tenant is shown.

import { SourceMap } from 'node:module';
import { isAbsolute, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_MODULE, type BundledWorker } from './bundle.ts';

const INLINE_MAP = /\n\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/;
const BUNDLE_PLACE = new RegExp(`\\b${BUNDLE_MODULE.replace('.', '\\.')}:(\\d+):(\\d+)`, 'g');

/** Takes the inline source map off the bundle (the isolate does not need it) and parses it. */
export function splitSourceMap(worker: BundledWorker): { worker: BundledWorker; map?: SourceMap } {
  const strip = (source: string): { source: string; map?: SourceMap } => {
    const match = INLINE_MAP.exec(source);
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

/** `line:column` of the bundle as `file:line:column` of the tenant's sources (file relative to `cwd`), if the map knows it. */
export function originOf(map: SourceMap | undefined, line: number, column: number, cwd: string): string | undefined {
  if (!map) return undefined;
  const origin = map.findOrigin(line, column);
  if (!('fileName' in origin) || !origin.fileName) return undefined;
  let file = origin.fileName;
  if (file.startsWith('file://')) file = fileURLToPath(file);
  if (isAbsolute(file)) file = relative(cwd, file);
  return `${file}:${origin.lineNumber}:${origin.columnNumber}`;
}

/** The first place in the bundle that `text` names. */
export function firstBundlePlace(text: string): { place: string; line: number; column: number } | undefined {
  const match = new RegExp(BUNDLE_PLACE.source).exec(text);
  return match ? { place: match[0], line: Number(match[1]), column: Number(match[2]) } : undefined;
}

/**
 * A stack frame in the platform's own code: the runtime (`isolet:runtime.js`) or a module it
 * loads on first use (`isolet:streams.js`). Frames the tenant cannot act on, and that name the
 * platform's internals; workerd shows a worker only its own frames.
 */
const PLATFORM_FRAME = /^\s*at (?:.*\()?isolet:[\w-]+\.js:\d+:\d+\)?\s*$/;

/**
 * `text` (a stack trace, an error message) as a tenant reads it: without the platform's own
 * frames, and with every place in the bundle mapped to the sources when the map is at hand.
 */
export function mapBundlePlaces(text: string, map: SourceMap | undefined, cwd: string): string {
  const own = text.includes('isolet:') ? text.split('\n').filter((line) => !PLATFORM_FRAME.test(line)).join('\n') : text;
  if (!map) return own;
  return own.replace(BUNDLE_PLACE, (place, line: string, column: string) => originOf(map, Number(line), Number(column), cwd) ?? place);
}
