// FormData (XHR Standard §5 Interface FormData) and the two body formats it travels in: the
// multipart/form-data encoding (HTML §4.10.21.8) for `new Request/Response(formData)`, and the
// parsers behind `body.formData()` (Fetch §5.3: multipart/form-data and
// application/x-www-form-urlencoded). A sandbox module (src/runtime/sandbox-modules.ts).
//
// The multipart parser is hand-written rather than taken from a library: formData() reads the
// whole body before parsing (Fetch §5.3 "consume body"), so a streaming parser buys nothing;
// the libraries that exist (busboy, undici's) are built on Node's Buffer and streams, which the
// sandbox does not have. It is a byte-level search for the delimiter lines, as RFC 7578 and
// RFC 2046 §5.1.1 describe them, and every malformed shape is a TypeError, as in workerd.

import type { BlobApi } from '../../blob/sandbox/module.ts';
import { iteratorFactory } from '../../iterators/sandbox.ts';
import {
  ArrayPrototypeFilter, ArrayPrototypeFind, ArrayPrototypeFindIndex, ArrayPrototypeMap, ArrayPrototypePush,
  ArrayPrototypeSome, Map, ObjectDefineProperty, ReflectApply, RegExpPrototypeTest, SafeMap, String,
  StringFromCharCode, StringPrototypeCharCodeAt, StringPrototypeIncludes, StringPrototypeIndexOf,
  StringPrototypeReplaceAll, StringPrototypeSlice, StringPrototypeSplit, StringPrototypeToLowerCase,
  StringPrototypeToWellFormed, StringPrototypeTrim, SymbolIterator, SymbolToStringTag, TypeError,
  TypedArrayPrototypeIndexOf, TypedArrayPrototypeSet, TypedArrayPrototypeSlice, TypedArrayPrototypeSubarray,
  Uint8Array,
} from '../../../sandbox/primordials.ts';

type Blob = InstanceType<BlobApi['Blob']>;
type File = InstanceType<BlobApi['File']>;
type Entry = [string, string | File];

export interface FormDataDeps {
  blob: BlobApi;
  utf8Encode(text: string): Uint8Array;
  utf8Decode(bytes: Uint8Array, keepBOM?: boolean): string;
  /** application/x-www-form-urlencoded parsing (URLSearchParams'), as name-value pairs. */
  parseUrlencoded(text: string): [string, string][];
  /** Random bytes for boundaries. */
  randomHex(bytes: number): string;
  /** The sandbox's clock (Date.now() is the tenant's to replace). */
  now(): number;
}

export interface FormDataApi {
  FormData: typeof FormData;
  isFormData(value: unknown): boolean;
  /** The multipart/form-data body of a FormData, and its Content-Type. */
  serialize(formData: unknown): { bytes: Uint8Array; contentType: string };
  /** Fetch §5.3 formData(): parse `bytes` as the body of Content-Type `contentType`. */
  parse(bytes: Uint8Array, contentType: string | null): FormData;
}

declare class FormData {
  append(name: unknown, value: unknown, filename?: unknown): void;
}

export function create(deps: FormDataDeps): FormDataApi {
  const { blob, utf8Encode, utf8Decode, parseUrlencoded } = deps;
  const entryIterator = iteratorFactory<[string, string | File]>('EntryIterator');
  const keyIterator = iteratorFactory<string>('KeyIterator');
  const valueIterator = iteratorFactory<string | File>('ValueIterator');

  function required(args: IArguments | unknown[], n: number, method: string): void {
    if (args.length < n) {
      throw new TypeError(n === 2
        ? `Failed to execute '${method}' on 'FormData': parameter 2 is not of type 'File or Blob or string'.`
        : `Failed to execute '${method}' on 'FormData': ${n} arguments required, but only ${args.length} present.`);
    }
  }

  // XHR §5 "create an entry": a Blob that is not a File (or is given a filename) becomes a File.
  // workerd: a string value ignores a filename (no overload error), and a Blob without one is
  // named after the entry (the spec says "blob").
  function makeEntry(name: unknown, value: unknown, filename: unknown, hasFilename: boolean): Entry {
    const n = StringPrototypeToWellFormed(String(name));
    if (!blob.isBlob(value)) return [n, StringPrototypeToWellFormed(String(value))];
    const isFile = value instanceof blob.File;
    if (isFile && !hasFilename) return [n, value as File];
    const fname = hasFilename ? StringPrototypeToWellFormed(String(filename)) : isFile ? (value as File).name : n;
    const lastModified = isFile ? (value as File).lastModified : deps.now();
    return [n, blob.fileOf(blob.bytesOf(value as Blob), fname, (value as Blob).type, lastModified)];
  }

  let entriesOf!: (f: FormData) => Entry[];

  class FormData {
    #entries: Entry[] = [];

    // XHR §5's only argument is an HTMLFormElement, which a worker never has; workerd ignores it.
    constructor(_form?: unknown) {}

    append(name: unknown, value: unknown, filename?: unknown): void {
      required(arguments, 2, 'append');
      ArrayPrototypePush(this.#entries, makeEntry(name, value, filename, arguments.length > 2));
    }

    delete(name: unknown): void {
      required(arguments, 1, 'delete');
      const n = StringPrototypeToWellFormed(String(name));
      this.#entries = ArrayPrototypeFilter(this.#entries, (e) => e[0] !== n);
    }

    get(name: unknown): string | File | null {
      required(arguments, 1, 'get');
      const n = StringPrototypeToWellFormed(String(name));
      const found = ArrayPrototypeFind(this.#entries, (e) => e[0] === n);
      return found ? found[1] : null;
    }

    getAll(name: unknown): (string | File)[] {
      required(arguments, 1, 'getAll');
      const n = StringPrototypeToWellFormed(String(name));
      return ArrayPrototypeMap(ArrayPrototypeFilter(this.#entries, (e) => e[0] === n), (e) => e[1]);
    }

    has(name: unknown): boolean {
      required(arguments, 1, 'has');
      const n = StringPrototypeToWellFormed(String(name));
      return ArrayPrototypeSome(this.#entries, (e) => e[0] === n);
    }

    // XHR §5 set(): replace the first entry of that name, remove the others (or append).
    set(name: unknown, value: unknown, filename?: unknown): void {
      required(arguments, 2, 'set');
      const entry = makeEntry(name, value, filename, arguments.length > 2);
      const i = ArrayPrototypeFindIndex(this.#entries, (e) => e[0] === entry[0]);
      if (i < 0) { ArrayPrototypePush(this.#entries, entry); return; }
      this.#entries[i] = entry;
      this.#entries = ArrayPrototypeFilter(this.#entries, (e, j) => j <= i || e[0] !== entry[0]);
    }

    // WebIDL pair iterators over the live list (an entry appended while iterating is visited).
    entries(): IterableIterator<[string, string | File]> {
      const list = (): Entry[] => this.#entries;
      return entryIterator((i) => { const e = list()[i]; return e ? [e[0], e[1]] : undefined; });
    }

    keys(): IterableIterator<string> {
      const list = (): Entry[] => this.#entries;
      return keyIterator((i) => list()[i]?.[0]);
    }

    values(): IterableIterator<string | File> {
      const list = (): Entry[] => this.#entries;
      return valueIterator((i) => list()[i]?.[1]);
    }

    forEach(callback: unknown, thisArg?: unknown): void {
      if (typeof callback !== 'function') {
        throw new TypeError("Failed to execute 'forEach' on 'FormData': parameter 1 is not of type 'Function'.");
      }
      for (let i = 0; i < this.#entries.length; i++) {
        const name = this.#entries[i]![0], value = this.#entries[i]![1];
        ReflectApply(callback, thisArg, [value, name, this]);
      }
    }

    static {
      entriesOf = (f) => f.#entries;
    }
  }
  ObjectDefineProperty(FormData.prototype, SymbolIterator, { __proto__: null, value: FormData.prototype.entries, writable: true, configurable: true });
  ObjectDefineProperty(FormData.prototype, SymbolToStringTag, { __proto__: null, value: 'FormData', configurable: true });
  ObjectDefineProperty(FormData, 'name', { __proto__: null, value: 'FormData', configurable: true });

  function isFormData(value: unknown): boolean {
    return value instanceof FormData;
  }

  // HTML §4.10.21.8: names and filenames escape LF, CR and '"' as %0A, %0D and %22.
  const escapeName = (s: string): string => StringPrototypeReplaceAll(StringPrototypeReplaceAll(StringPrototypeReplaceAll(s, '\n', '%0A'), '\r', '%0D'), '"', '%22');

  function serialize(formData: unknown): { bytes: Uint8Array; contentType: string } {
    const boundary = `----isolet-formdata-${deps.randomHex(12)}`;
    const chunks: Uint8Array[] = [];
    const entries = entriesOf(formData as FormData);
    for (let i = 0; i < entries.length; i++) {
      const name = entries[i]![0], value = entries[i]![1];
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"`;
      if (typeof value === 'string') {
        ArrayPrototypePush(chunks, utf8Encode(`${head}\r\n\r\n`), utf8Encode(value), utf8Encode('\r\n'));
      } else {
        head += `; filename="${escapeName(value.name)}"\r\nContent-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`;
        ArrayPrototypePush(chunks, utf8Encode(head), blob.bytesOf(value), utf8Encode('\r\n'));
      }
    }
    // workerd ends the body with the close delimiter and no CRLF after it.
    ArrayPrototypePush(chunks, utf8Encode(`--${boundary}--`));
    let total = 0;
    for (let i = 0; i < chunks.length; i++) total += chunks[i]!.byteLength;
    const bytes = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < chunks.length; i++) {
      TypedArrayPrototypeSet(bytes, chunks[i]!, at);
      at += chunks[i]!.byteLength;
    }
    return { bytes, contentType: `multipart/form-data; boundary=${boundary}` };
  }

  // MIME Sniffing §4.4 "parse a MIME type", reduced to what formData() needs: the essence and
  // the parameters (quoted strings unescaped).
  function parseMimeType(input: string): { essence: string; params: Map<string, string> } | null {
    const s = StringPrototypeTrim(input);
    const semi = StringPrototypeIndexOf(s, ';');
    const essence = StringPrototypeToLowerCase(StringPrototypeTrim(semi < 0 ? s : StringPrototypeSlice(s, 0, semi)));
    if (!RegExpPrototypeTest(/^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/, essence)) return null;
    return { essence, params: parseParams(s, semi < 0 ? s.length : semi + 1) };
  }

  /** `; key=value` parameters from index `i` of `s` (first of each key wins). */
  function parseParams(s: string, i: number): Map<string, string> {
    const params = new SafeMap<string, string>();
    while (i < s.length) {
      while (i < s.length && StringPrototypeIncludes(' \t\n\r', s[i]!)) i++;
      let eq = i;
      while (eq < s.length && s[eq] !== '=' && s[eq] !== ';') eq++;
      const key = StringPrototypeToLowerCase(StringPrototypeTrim(StringPrototypeSlice(s, i, eq)));
      i = eq;
      if (s[i] === ';') { i++; continue; }
      i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i++];
        }
        while (i < s.length && s[i] !== ';') i++;
      } else {
        const end = StringPrototypeIndexOf(s, ';', i);
        value = StringPrototypeTrim(StringPrototypeSlice(s, i, end < 0 ? s.length : end));
        i = end < 0 ? s.length : end;
      }
      i++;
      if (key && !params.has(key)) params.set(key, value);
    }
    return params;
  }

  function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
    const first = needle[0];
    const last = hay.length - needle.length;
    outer: for (let i = TypedArrayPrototypeIndexOf(hay, first!, from); i !== -1 && i <= last; i = TypedArrayPrototypeIndexOf(hay, first!, i + 1)) {
      for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  const malformed = (): TypeError => new TypeError('Failed to parse the body as multipart/form-data: the body is malformed.');
  const latin1 = (bytes: Uint8Array): string => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 8192) s += ReflectApply(StringFromCharCode, null, TypedArrayPrototypeSubarray(bytes, i, i + 8192) as unknown as number[]);
    return s;
  };

  /** The string's code units as bytes (latin1() undone). */
  const latin1Bytes = (s: string): Uint8Array => {
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = StringPrototypeCharCodeAt(s, i) & 0xff;
    return bytes;
  };

  // RFC 7578 / RFC 2046 §5.1.1: parts between "--boundary" lines, the last one "--boundary--".
  function parseMultipart(bytes: Uint8Array, boundary: string, into: Entry[]): void {
    if (boundary.length === 0 || boundary.length > 70) throw malformed();
    const dash = utf8Encode(`--${boundary}`);
    const delimiter = utf8Encode(`\r\n--${boundary}`);
    // The first delimiter: at the very start, or after a preamble that ends in CRLF.
    let at: number;
    if (indexOf(TypedArrayPrototypeSubarray(bytes, 0, dash.length), dash, 0) === 0) at = dash.length;
    else {
      const found = indexOf(bytes, delimiter, 0);
      if (found < 0) throw malformed();
      at = found + delimiter.length;
    }
    for (;;) {
      // After a delimiter: "--" ends the body; else optional whitespace and CRLF start a part.
      if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return;
      while (bytes[at] === 0x20 || bytes[at] === 0x09) at++;
      if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) throw malformed();
      at += 2;
      const headEnd = indexOf(bytes, utf8Encode('\r\n\r\n'), at);
      // A part with no header lines starts its body straight after the delimiter's CRLF.
      const emptyHead = bytes[at] === 0x0d && bytes[at + 1] === 0x0a;
      if (!emptyHead && headEnd < 0) throw malformed();
      const headText = emptyHead ? '' : latin1(TypedArrayPrototypeSubarray(bytes, at, headEnd));
      at = emptyHead ? at + 2 : headEnd + 4;
      let name: string | null = null;
      let filename: string | null = null;
      let contentType: string | null = null;
      const lines = StringPrototypeSplit(headText, '\r\n');
      for (let l = 0; l < lines.length; l++) {
        const line = lines[l]!;
        const colon = StringPrototypeIndexOf(line, ':');
        if (colon <= 0) throw malformed();
        const field = StringPrototypeToLowerCase(StringPrototypeTrim(StringPrototypeSlice(line, 0, colon)));
        const value = StringPrototypeTrim(StringPrototypeSlice(line, colon + 1));
        if (field === 'content-disposition') {
          if (!RegExpPrototypeTest(/^form-data\s*(;|$)/i, value)) throw malformed();
          const semi = StringPrototypeIndexOf(value, ';');
          const params = parseParams(value, semi < 0 ? value.length : semi + 1);
          const n = params.get('name');
          const f = params.get('filename');
          // Header bytes are UTF-8 (RFC 7578 §5.1.1): decode what latin1() read as bytes.
          // workerd leaves %22, %0A and %0D in names as they are (it does not undo the escapes).
          if (n !== undefined) name = utf8Decode(latin1Bytes(n), true);
          if (f !== undefined) filename = utf8Decode(latin1Bytes(f), true);
        } else if (field === 'content-type') {
          contentType = value;
        }
      }
      if (name === null) throw malformed();
      const end = indexOf(bytes, delimiter, at);
      if (end < 0) throw malformed();
      const body = TypedArrayPrototypeSubarray(bytes, at, end);
      if (filename !== null) {
        // workerd: the part's Content-Type as written (not lowercased), or '' without one.
        ArrayPrototypePush(into, [name, blob.fileOf(TypedArrayPrototypeSlice(body), filename, contentType ?? '', deps.now())]);
      } else {
        ArrayPrototypePush(into, [name, utf8Decode(body, true)]);
      }
      at = end + delimiter.length;
    }
  }

  function parse(bytes: Uint8Array, contentType: string | null): FormData {
    const mime = contentType === null ? null : parseMimeType(contentType);
    const formData = new FormData();
    const entries = entriesOf(formData);
    if (mime?.essence === 'multipart/form-data') {
      const boundary = mime.params.get('boundary');
      if (boundary === undefined) throw new TypeError('No boundary string in Content-Type header. The multipart/form-data MIME type requires a boundary parameter.');
      parseMultipart(bytes, boundary, entries);
    } else if (mime?.essence === 'application/x-www-form-urlencoded') {
      const pairs = parseUrlencoded(utf8Decode(bytes));
      for (let i = 0; i < pairs.length; i++) ArrayPrototypePush(entries, [pairs[i]![0], pairs[i]![1]]);
    } else {
      throw new TypeError('Unrecognized Content-Type header value. FormData can only parse the following MIME types: multipart/form-data, application/x-www-form-urlencoded.');
    }
    return formData;
  }

  return { FormData, isFormData, serialize, parse };
}
