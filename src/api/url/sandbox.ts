// URL and URLSearchParams for the sandbox (WHATWG URL Standard).
//
// Why hand-written and not whatwg-url: measured with the same snapshot method as
// bench/sandbox-size.ts, whatwg-url 17 bundles to ~53 KB minified even with tr46 and
// @exodus/bytes shimmed, and adds ~262 KB of used heap to every isolate, more than the whole
// runtime's budget (~250 KB); it also reads SharedArrayBuffer and TextEncoder at module load,
// which a snapshot context lacks, and would need bundler aliases in the core's build. This file
// follows the spec's basic URL parser state machine (§4.4) step by step instead; section numbers
// in comments point at the spec. IDNA (UTS #46) for non-ASCII and `xn--` hosts is delegated to
// the host (Node's url.domainToASCII, which is ada, the engine workerd uses), so no Unicode
// tables live in the isolate.

import { callSync, createModule } from '../../sandbox/host-calls.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import type { SearchParamsApi, SearchParamsDeps } from './sandbox/search-params.ts';
import { utf8Encode, utf8Decode } from '../encoding/sandbox.ts';
import {
  ArrayFrom, ArrayPrototypeJoin, ArrayPrototypePop, ArrayPrototypePush, ArrayPrototypeSlice, ArrayPrototypeUnshift,
  Error, MathFloor, NumberParseInt, NumberPrototypeToString, ObjectDefineProperty, ObjectGetOwnPropertyDescriptor, RegExpPrototypeTest, String,
  StringPrototypeCharCodeAt, StringPrototypeCodePointAt, StringPrototypeEndsWith, StringPrototypeIncludes,
  StringPrototypeSlice, StringPrototypeSplit, StringPrototypeStartsWith, StringPrototypeToLowerCase,
  StringPrototypeToWellFormed, SymbolToStringTag, TypeError, TypedArrayPrototypeSubarray, Uint8Array,
  stringCodePoints, stringTrimBy,
} from '../../sandbox/primordials.ts';

// ---------------------------------------------------------------------------------------------
// URL records (§4.1)

interface URLRecord {
  scheme: string;
  username: string;
  password: string;
  /** Serialized host (IPv6 in brackets), or null. */
  host: string | null;
  port: number | null;
  /** A list of segments, or a string for an opaque path. */
  path: string[] | string;
  query: string | null;
  fragment: string | null;
}

const SPECIAL_PORTS: Record<string, number | null> = { __proto__: null, ftp: 21, file: null, http: 80, https: 443, ws: 80, wss: 443 } as never;
const isSpecialScheme = (scheme: string): boolean => scheme in SPECIAL_PORTS;
const defaultPort = (scheme: string): number | null => SPECIAL_PORTS[scheme] ?? null;

// ---------------------------------------------------------------------------------------------
// Percent-encoding (§1.3). Each set is a predicate on a code point.

type EncodeSet = (c: number) => boolean;
const c0ControlSet: EncodeSet = (c) => c < 0x20 || c > 0x7e;
const fragmentSet: EncodeSet = (c) => c0ControlSet(c) || c === 0x20 || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60;
const querySet: EncodeSet = (c) => c0ControlSet(c) || c === 0x20 || c === 0x22 || c === 0x23 || c === 0x3c || c === 0x3e;
const specialQuerySet: EncodeSet = (c) => querySet(c) || c === 0x27;
const pathSet: EncodeSet = (c) => querySet(c) || c === 0x3f || c === 0x5e || c === 0x60 || c === 0x7b || c === 0x7d;
const userinfoSet: EncodeSet = (c) => pathSet(c) || c === 0x2f || c === 0x3a || c === 0x3b || c === 0x3d || c === 0x40 || (c >= 0x5b && c <= 0x5e) || c === 0x7c;
const componentSet: EncodeSet = (c) => userinfoSet(c) || (c >= 0x24 && c <= 0x26) || c === 0x2b || c === 0x2c;
const formSet: EncodeSet = (c) => componentSet(c) || c === 0x21 || (c >= 0x27 && c <= 0x29) || c === 0x7e;

const HEX = '0123456789ABCDEF';
function pctByte(b: number): string { return '%' + HEX[b >> 4] + HEX[b & 15]; }

/** UTF-8 percent-encode one code point (given as its string) using `set`. */
function pctEncodeCp(cpStr: string, set: EncodeSet): string {
  const c = StringPrototypeCodePointAt(cpStr, 0)!;
  if (!set(c)) return cpStr;
  if (c < 0x80) return pctByte(c);
  const bytes = utf8Encode(cpStr);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += pctByte(bytes[i]!);
  return out;
}

/** UTF-8 percent-encode a whole string (§1.3 "percent-encode after encoding"). */
function pctEncodeString(input: string, set: EncodeSet, spaceAsPlus = false): string {
  let out = '';
  const cps = stringCodePoints(input);
  for (let i = 0; i < cps.length; i++) {
    const ch = cps[i]!;
    if (spaceAsPlus && ch === ' ') out += '+';
    else out += pctEncodeCp(ch, set);
  }
  return out;
}

const isHexDigit = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const hexVal = (c: number): number => (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);

/** §1.3 "percent-decode" a byte sequence. */
function pctDecodeBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x25 && i + 2 < bytes.length && isHexDigit(bytes[i + 1]) && isHexDigit(bytes[i + 2])) {
      out[o++] = (hexVal(bytes[i + 1]) << 4) | hexVal(bytes[i + 2]);
      i += 2;
    } else {
      out[o++] = b;
    }
  }
  return TypedArrayPrototypeSubarray(out, 0, o);
}

// ---------------------------------------------------------------------------------------------
// Hosts (§3)

const isASCIIAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isASCIIDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

// §3.2 forbidden host code points.
function isForbiddenHost(c: number): boolean {
  return c === 0 || c === 9 || c === 0xa || c === 0xd || c === 0x20 || c === 0x23 || c === 0x2f || c === 0x3a ||
    c === 0x3c || c === 0x3e || c === 0x3f || c === 0x40 || c === 0x5b || c === 0x5c || c === 0x5d || c === 0x5e || c === 0x7c;
}
// §3.2 forbidden domain code points: forbidden host code points, C0 controls, %, DEL.
function isForbiddenDomain(c: number): boolean {
  return isForbiddenHost(c) || c <= 0x1f || c === 0x25 || c === 0x7f;
}

/** §3.5 host parser. Returns the serialized host, or null for failure. */
function parseHost(input: string, isOpaque: boolean): string | null {
  if (StringPrototypeStartsWith(input, '[')) {
    if (!StringPrototypeEndsWith(input, ']')) return null;
    const pieces = parseIPv6(StringPrototypeSlice(input, 1, -1));
    return pieces ? '[' + serializeIPv6(pieces) + ']' : null;
  }
  if (isOpaque) {
    // §3.5 opaque-host parser.
    for (let i = 0; i < input.length; i++) if (isForbiddenHost(StringPrototypeCharCodeAt(input, i))) return null;
    return pctEncodeString(input, c0ControlSet);
  }
  const domain = utf8Decode(pctDecodeBytes(utf8Encode(input)), true);
  const ascii = domainToASCII(domain);
  if (ascii === null) return null;
  for (let i = 0; i < ascii.length; i++) if (isForbiddenDomain(StringPrototypeCharCodeAt(ascii, i))) return null;
  if (endsInANumber(ascii)) {
    const v4 = parseIPv4(ascii);
    return v4 === null ? null : serializeIPv4(v4);
  }
  return ascii;
}

/**
 * §3.3 "domain to ASCII" with beStrict = false. Plain ASCII labels only need lowercasing
 * (UTS #46 maps nothing else in ASCII when UseSTD3ASCIIRules is false); anything non-ASCII or
 * with a punycode label goes to the host's IDNA implementation.
 */
function domainToASCII(domain: string): string | null {
  let ascii = true;
  for (let i = 0; i < domain.length; i++) if (StringPrototypeCharCodeAt(domain, i) > 0x7f) { ascii = false; break; }
  let result: string;
  if (ascii) {
    result = StringPrototypeToLowerCase(domain);
    if (StringPrototypeStartsWith(result, 'xn--') || StringPrototypeIncludes(result, '.xn--')) {
      result = callSync('url.domainToASCII', result);
    }
  } else {
    result = callSync('url.domainToASCII', domain);
  }
  // Node returns '' for failure; the spec also fails on an empty result.
  return result === '' ? null : result;
}

/** §3.5 "ends in a number checker". */
function endsInANumber(input: string): boolean {
  const parts = StringPrototypeSplit(input, '.');
  if (parts[parts.length - 1] === '') {
    if (parts.length === 1) return false;
    ArrayPrototypePop(parts);
  }
  const last = parts[parts.length - 1];
  if (last !== '' && RegExpPrototypeTest(/^[0-9]+$/, last)) return true;
  return parseIPv4Number(last) !== null;
}

/** §3.5 IPv4 number parser; null for failure. */
function parseIPv4Number(input: string): number | null {
  if (input === '') return null;
  let radix = 10;
  if (input.length >= 2 && input[0] === '0' && (input[1] === 'x' || input[1] === 'X')) {
    input = StringPrototypeSlice(input, 2); radix = 16;
  } else if (input.length >= 2 && input[0] === '0') {
    input = StringPrototypeSlice(input, 1); radix = 8;
  }
  if (input === '') return 0;
  const re = radix === 10 ? /^[0-9]+$/ : radix === 16 ? /^[0-9a-fA-F]+$/ : /^[0-7]+$/;
  if (!RegExpPrototypeTest(re, input)) return null;
  return NumberParseInt(input, radix);
}

/** §3.5 IPv4 parser; null for failure. */
function parseIPv4(input: string): number | null {
  const parts = StringPrototypeSplit(input, '.');
  if (parts[parts.length - 1] === '' && parts.length > 1) ArrayPrototypePop(parts);
  if (parts.length > 4) return null;
  const numbers: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const n = parseIPv4Number(parts[i]!);
    if (n === null) return null;
    ArrayPrototypePush(numbers, n);
  }
  for (let i = 0; i < numbers.length - 1; i++) if (numbers[i] > 255) return null;
  const last = numbers[numbers.length - 1];
  if (last >= 256 ** (5 - numbers.length)) return null;
  let ipv4 = last;
  for (let i = 0; i < numbers.length - 1; i++) ipv4 += numbers[i] * 256 ** (3 - i);
  return ipv4;
}

function serializeIPv4(address: number): string {
  const out: number[] = [];
  for (let i = 0; i < 4; i++) { ArrayPrototypeUnshift(out, address % 256); address = MathFloor(address / 256); }
  return ArrayPrototypeJoin(out, '.');
}

/** §3.5 IPv6 parser; eight 16-bit pieces, or null for failure. */
function parseIPv6(input: string): number[] | null {
  const address = [0, 0, 0, 0, 0, 0, 0, 0];
  let pieceIndex = 0;
  let compress: number | null = null;
  let p = 0;
  const c = (i: number): number => (i < input.length ? StringPrototypeCharCodeAt(input, i) : -1);
  if (c(p) === 0x3a) {
    if (c(p + 1) !== 0x3a) return null;
    p += 2;
    compress = ++pieceIndex;
  }
  while (c(p) !== -1) {
    if (pieceIndex === 8) return null;
    if (c(p) === 0x3a) {
      if (compress !== null) return null;
      p++;
      compress = ++pieceIndex;
      continue;
    }
    let value = 0, length = 0;
    while (length < 4 && c(p) !== -1 && isHexDigit(c(p))) {
      value = value * 16 + hexVal(c(p));
      p++; length++;
    }
    if (c(p) === 0x2e) {
      // IPv4 in IPv6.
      if (length === 0) return null;
      p -= length;
      if (pieceIndex > 6) return null;
      let numbersSeen = 0;
      while (c(p) !== -1) {
        let ipv4Piece: number | null = null;
        if (numbersSeen > 0) {
          if (c(p) === 0x2e && numbersSeen < 4) p++;
          else return null;
        }
        if (!isASCIIDigit(c(p))) return null;
        while (isASCIIDigit(c(p))) {
          const number = c(p) - 0x30;
          if (ipv4Piece === null) ipv4Piece = number;
          else if (ipv4Piece === 0) return null;
          else ipv4Piece = ipv4Piece * 10 + number;
          if (ipv4Piece > 255) return null;
          p++;
        }
        address[pieceIndex] = address[pieceIndex] * 0x100 + ipv4Piece!;
        numbersSeen++;
        if (numbersSeen === 2 || numbersSeen === 4) pieceIndex++;
      }
      if (numbersSeen !== 4) return null;
      break;
    } else if (c(p) === 0x3a) {
      p++;
      if (c(p) === -1) return null;
    } else if (c(p) !== -1) {
      return null;
    }
    address[pieceIndex++] = value;
  }
  if (compress !== null) {
    let swaps = pieceIndex - compress;
    pieceIndex = 7;
    while (pieceIndex !== 0 && swaps > 0) {
      const t = address[compress + swaps - 1];
      address[compress + swaps - 1] = address[pieceIndex];
      address[pieceIndex] = t;
      pieceIndex--; swaps--;
    }
  } else if (pieceIndex !== 8) {
    return null;
  }
  return address;
}

/** §3.6 IPv6 serializer: compress the first longest run of two or more zero pieces. */
function serializeIPv6(address: number[]): string {
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (address[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && address[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  let out = '';
  let ignore0 = false;
  for (let i = 0; i < 8; i++) {
    if (ignore0 && address[i] === 0) continue;
    ignore0 = false;
    if (best === i) { out += i === 0 ? '::' : ':'; ignore0 = true; continue; }
    out += NumberPrototypeToString(address[i], 16);
    if (i !== 7) out += ':';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The basic URL parser (§4.4)

// State names as small integers; the spec's names are in the comments at each case.
const SCHEME_START = 1, SCHEME = 2, NO_SCHEME = 3, SPECIAL_RELATIVE_OR_AUTHORITY = 4, PATH_OR_AUTHORITY = 5,
  RELATIVE = 6, RELATIVE_SLASH = 7, SPECIAL_AUTHORITY_SLASHES = 8, SPECIAL_AUTHORITY_IGNORE_SLASHES = 9,
  AUTHORITY = 10, HOST = 11, HOSTNAME = 12, PORT = 13, FILE = 14, FILE_SLASH = 15, FILE_HOST = 16,
  PATH_START = 17, PATH = 18, OPAQUE_PATH = 19, QUERY = 20, FRAGMENT = 21;

const isWindowsDriveLetter = (s: string, normalizedOnly = false): boolean =>
  s.length === 2 && isASCIIAlpha(StringPrototypeCharCodeAt(s, 0)) && (s[1] === ':' || (!normalizedOnly && s[1] === '|'));

/** §4.4 "starts with a Windows drive letter", on code points cps[p...]. */
function startsWithWindowsDriveLetter(cps: string[], p: number): boolean {
  if (cps.length - p < 2) return false;
  if (!isWindowsDriveLetter(cps[p] + cps[p + 1])) return false;
  if (cps.length - p === 2) return true;
  const t = cps[p + 2];
  return t === '/' || t === '\\' || t === '?' || t === '#';
}

function isSingleDot(s: string): boolean { return s === '.' || StringPrototypeToLowerCase(s) === '%2e'; }
function isDoubleDot(s: string): boolean {
  s = StringPrototypeToLowerCase(s);
  return s === '..' || s === '.%2e' || s === '%2e.' || s === '%2e%2e';
}

/** §4.1 "shorten a URL's path". */
function shortenPath(url: URLRecord): void {
  const path = url.path as string[];
  if (url.scheme === 'file' && path.length === 1 && isWindowsDriveLetter(path[0], true)) return;
  ArrayPrototypePop(path);
}

const includesCredentials = (url: URLRecord): boolean => url.username !== '' || url.password !== '';
const cannotHaveUsernamePasswordPort = (url: URLRecord): boolean => url.host === null || url.host === '' || url.scheme === 'file';

/**
 * §4.4 basic URL parser. With `url` and `stateOverride` it modifies `url` in place (the setters)
 * and returns it, or null on failure; 'unchanged' is the spec's plain "return" in override mode.
 */
function basicParse(input: string, base: URLRecord | null, given?: URLRecord, stateOverride?: number): URLRecord | null {
  let url: URLRecord;
  if (given) {
    url = given;
  } else {
    url = { scheme: '', username: '', password: '', host: null, port: null, path: [], query: null, fragment: null };
    // Step 1: strip leading and trailing C0 control or space.
    input = stringTrimBy(input, (c) => c <= 0x20);
  }
  // Step 3: remove all ASCII tab or newline.
  let stripped = '';
  for (let i = 0; i < input.length; i++) {
    const c = StringPrototypeCharCodeAt(input, i);
    if (c !== 0x09 && c !== 0x0a && c !== 0x0d) stripped += input[i];
  }
  input = stripped;
  const cps = stringCodePoints(input);
  let state = stateOverride ?? SCHEME_START;
  let buffer = '';
  let atSignSeen = false, insideBrackets = false, passwordTokenSeen = false;
  const path = (): string[] => url.path as string[];

  for (let p = 0; ; p++) {
    const c = p < cps.length ? cps[p] : ''; // '' is the spec's EOF code point
    const eof = p >= cps.length;
    switch (state) {
      case SCHEME_START:
        if (!eof && isASCIIAlpha(StringPrototypeCharCodeAt(c, 0))) { buffer += StringPrototypeToLowerCase(c); state = SCHEME; }
        else if (!stateOverride) { state = NO_SCHEME; p--; }
        else return null;
        break;

      case SCHEME:
        if (!eof && (RegExpPrototypeTest(/[A-Za-z0-9+\-.]/, c))) {
          buffer += StringPrototypeToLowerCase(c);
        } else if (c === ':') {
          if (stateOverride) {
            if (isSpecialScheme(url.scheme) !== isSpecialScheme(buffer)) return url;
            if ((includesCredentials(url) || url.port !== null) && buffer === 'file') return url;
            if (url.scheme === 'file' && url.host === '') return url;
          }
          url.scheme = buffer;
          if (stateOverride) {
            if (url.port === defaultPort(url.scheme)) url.port = null;
            return url;
          }
          buffer = '';
          if (url.scheme === 'file') {
            state = FILE;
          } else if (isSpecialScheme(url.scheme) && base && base.scheme === url.scheme) {
            state = SPECIAL_RELATIVE_OR_AUTHORITY;
          } else if (isSpecialScheme(url.scheme)) {
            state = SPECIAL_AUTHORITY_SLASHES;
          } else if (cps[p + 1] === '/') {
            state = PATH_OR_AUTHORITY; p++;
          } else {
            url.path = '';
            state = OPAQUE_PATH;
          }
        } else if (!stateOverride) {
          buffer = ''; state = NO_SCHEME; p = -1;
        } else {
          return null;
        }
        break;

      case NO_SCHEME:
        if (!base || (typeof base.path === 'string' && c !== '#')) return null;
        if (typeof base.path === 'string' && c === '#') {
          url.scheme = base.scheme; url.path = base.path; url.query = base.query; url.fragment = '';
          state = FRAGMENT;
        } else if (base.scheme !== 'file') {
          state = RELATIVE; p--;
        } else {
          state = FILE; p--;
        }
        break;

      case SPECIAL_RELATIVE_OR_AUTHORITY:
        if (c === '/' && cps[p + 1] === '/') { state = SPECIAL_AUTHORITY_IGNORE_SLASHES; p++; }
        else { state = RELATIVE; p--; }
        break;

      case PATH_OR_AUTHORITY:
        if (c === '/') state = AUTHORITY;
        else { state = PATH; p--; }
        break;

      case RELATIVE:
        url.scheme = base!.scheme;
        if (c === '/') state = RELATIVE_SLASH;
        else if (isSpecialScheme(url.scheme) && c === '\\') state = RELATIVE_SLASH;
        else {
          url.username = base!.username; url.password = base!.password; url.host = base!.host;
          url.port = base!.port; url.path = ArrayPrototypeSlice((base!.path as string[])); url.query = base!.query;
          if (c === '?') { url.query = ''; state = QUERY; }
          else if (c === '#') { url.fragment = ''; state = FRAGMENT; }
          else if (!eof) {
            url.query = null;
            shortenPath(url);
            state = PATH; p--;
          }
        }
        break;

      case RELATIVE_SLASH:
        if (isSpecialScheme(url.scheme) && (c === '/' || c === '\\')) {
          state = SPECIAL_AUTHORITY_IGNORE_SLASHES;
        } else if (c === '/') {
          state = AUTHORITY;
        } else {
          url.username = base!.username; url.password = base!.password; url.host = base!.host; url.port = base!.port;
          state = PATH; p--;
        }
        break;

      case SPECIAL_AUTHORITY_SLASHES:
        if (c === '/' && cps[p + 1] === '/') { state = SPECIAL_AUTHORITY_IGNORE_SLASHES; p++; }
        else { state = SPECIAL_AUTHORITY_IGNORE_SLASHES; p--; }
        break;

      case SPECIAL_AUTHORITY_IGNORE_SLASHES:
        if (c !== '/' && c !== '\\') { state = AUTHORITY; p--; }
        break;

      case AUTHORITY:
        if (c === '@') {
          if (atSignSeen) buffer = '%40' + buffer;
          atSignSeen = true;
          const bcs = stringCodePoints(buffer);
          for (let i = 0; i < bcs.length; i++) {
            const bc = bcs[i]!;
            if (bc === ':' && !passwordTokenSeen) { passwordTokenSeen = true; continue; }
            const enc = pctEncodeCp(bc, userinfoSet);
            if (passwordTokenSeen) url.password += enc;
            else url.username += enc;
          }
          buffer = '';
        } else if (eof || c === '/' || c === '?' || c === '#' || (isSpecialScheme(url.scheme) && c === '\\')) {
          if (atSignSeen && buffer === '') return null;
          p -= stringCodePoints(buffer).length + 1;
          buffer = '';
          state = HOST;
        } else {
          buffer += c;
        }
        break;

      case HOST:
      case HOSTNAME:
        if (stateOverride && url.scheme === 'file') {
          p--; state = FILE_HOST;
        } else if (c === ':' && !insideBrackets) {
          if (buffer === '') return null;
          if (stateOverride === HOSTNAME) return null;
          const h = parseHost(buffer, !isSpecialScheme(url.scheme));
          if (h === null) return null;
          url.host = h; buffer = ''; state = PORT;
        } else if (eof || c === '/' || c === '?' || c === '#' || (isSpecialScheme(url.scheme) && c === '\\')) {
          p--;
          if (isSpecialScheme(url.scheme) && buffer === '') return null;
          if (stateOverride && buffer === '' && (includesCredentials(url) || url.port !== null)) return url;
          const h = parseHost(buffer, !isSpecialScheme(url.scheme));
          if (h === null) return null;
          url.host = h; buffer = ''; state = PATH_START;
          if (stateOverride) return url;
        } else {
          if (c === '[') insideBrackets = true;
          if (c === ']') insideBrackets = false;
          buffer += c;
        }
        break;

      case PORT:
        if (!eof && isASCIIDigit(StringPrototypeCharCodeAt(c, 0))) {
          buffer += c;
        } else if (eof || c === '/' || c === '?' || c === '#' || (isSpecialScheme(url.scheme) && c === '\\') || stateOverride) {
          if (buffer !== '') {
            const port = NumberParseInt(buffer, 10);
            if (port > 65535) return null;
            url.port = port === defaultPort(url.scheme) ? null : port;
            buffer = '';
            // The current spec returns here in override mode even if more input follows.
            if (stateOverride) return url;
          }
          if (stateOverride) return null;
          state = PATH_START; p--;
        } else {
          return null;
        }
        break;

      case FILE:
        url.scheme = 'file';
        url.host = '';
        if (c === '/' || c === '\\') {
          state = FILE_SLASH;
        } else if (base && base.scheme === 'file') {
          url.host = base.host; url.path = ArrayPrototypeSlice((base.path as string[])); url.query = base.query;
          if (c === '?') { url.query = ''; state = QUERY; }
          else if (c === '#') { url.fragment = ''; state = FRAGMENT; }
          else if (!eof) {
            url.query = null;
            if (!startsWithWindowsDriveLetter(cps, p)) shortenPath(url);
            else url.path = [];
            state = PATH; p--;
          }
        } else {
          state = PATH; p--;
        }
        break;

      case FILE_SLASH:
        if (c === '/' || c === '\\') {
          state = FILE_HOST;
        } else {
          if (base && base.scheme === 'file') {
            url.host = base.host;
            const bp = base.path as string[];
            if (!startsWithWindowsDriveLetter(cps, p) && bp.length > 0 && isWindowsDriveLetter(bp[0], true)) {
              ArrayPrototypePush(path(), bp[0]);
            }
          }
          state = PATH; p--;
        }
        break;

      case FILE_HOST:
        if (eof || c === '/' || c === '\\' || c === '?' || c === '#') {
          p--;
          if (!stateOverride && isWindowsDriveLetter(buffer)) {
            state = PATH;
          } else if (buffer === '') {
            url.host = '';
            if (stateOverride) return url;
            state = PATH_START;
          } else {
            let h = parseHost(buffer, !isSpecialScheme(url.scheme));
            if (h === null) return null;
            if (h === 'localhost') h = '';
            url.host = h;
            if (stateOverride) return url;
            buffer = '';
            state = PATH_START;
          }
        } else {
          buffer += c;
        }
        break;

      case PATH_START:
        if (isSpecialScheme(url.scheme)) {
          state = PATH;
          if (c !== '/' && c !== '\\') p--;
        } else if (!stateOverride && c === '?') {
          url.query = ''; state = QUERY;
        } else if (!stateOverride && c === '#') {
          url.fragment = ''; state = FRAGMENT;
        } else if (!eof) {
          state = PATH;
          if (c !== '/') p--;
        } else if (stateOverride && url.host === null) {
          ArrayPrototypePush(path(), '');
        }
        break;

      case PATH: {
        const slash = c === '/' || (isSpecialScheme(url.scheme) && c === '\\');
        if (eof || slash || (!stateOverride && (c === '?' || c === '#'))) {
          if (isDoubleDot(buffer)) {
            shortenPath(url);
            if (!slash) ArrayPrototypePush(path(), '');
          } else if (isSingleDot(buffer) && !slash) {
            ArrayPrototypePush(path(), '');
          } else if (!isSingleDot(buffer)) {
            if (url.scheme === 'file' && path().length === 0 && isWindowsDriveLetter(buffer)) {
              buffer = buffer[0] + ':';
            }
            ArrayPrototypePush(path(), buffer);
          }
          buffer = '';
          if (c === '?') { url.query = ''; state = QUERY; }
          if (c === '#') { url.fragment = ''; state = FRAGMENT; }
        } else {
          buffer += pctEncodeCp(c, pathSet);
        }
        break;
      }

      case OPAQUE_PATH:
        if (c === '?') { url.query = ''; state = QUERY; }
        else if (c === '#') { url.fragment = ''; state = FRAGMENT; }
        else if (c === ' ') {
          // §4.4 opaque path state: a space is kept unless a query or fragment follows it.
          const next = cps[p + 1];
          if (next === '?' || next === '#') url.path += '%20';
          else url.path += ' ';
        } else if (!eof) {
          url.path += pctEncodeCp(c, c0ControlSet);
        }
        break;

      case QUERY:
        if (eof || (!stateOverride && c === '#')) {
          const set = isSpecialScheme(url.scheme) ? specialQuerySet : querySet;
          url.query += pctEncodeString(buffer, set);
          buffer = '';
          if (c === '#') { url.fragment = ''; state = FRAGMENT; }
        } else if (!eof) {
          buffer += c;
        }
        break;

      case FRAGMENT:
        if (!eof) url.fragment += pctEncodeCp(c, fragmentSet);
        break;
    }
    // §4.4: stop once a run of the state machine ends with the pointer on EOF.
    if (p >= cps.length) break;
  }
  return url;
}

/** §4.5 URL serializer. */
function serializeURL(url: URLRecord, excludeFragment = false): string {
  let out = url.scheme + ':';
  if (url.host !== null) {
    out += '//';
    if (includesCredentials(url)) {
      out += url.username;
      if (url.password !== '') out += ':' + url.password;
      out += '@';
    }
    out += url.host;
    if (url.port !== null) out += ':' + url.port;
  }
  if (url.host === null && typeof url.path !== 'string' && url.path.length > 1 && url.path[0] === '') out += '/.';
  out += serializePath(url);
  if (url.query !== null) out += '?' + url.query;
  if (!excludeFragment && url.fragment !== null) out += '#' + url.fragment;
  return out;
}

function serializePath(url: URLRecord): string {
  if (typeof url.path === 'string') return url.path;
  let out = '';
  for (let i = 0; i < url.path.length; i++) out += '/' + url.path[i];
  return out;
}

/** §4.7 origin, serialized (§7.5 of HTML). */
function serializeOrigin(url: URLRecord): string {
  switch (url.scheme) {
    case 'blob': {
      const inner = basicParse(serializePath(url), null);
      if (inner && (inner.scheme === 'http' || inner.scheme === 'https')) return serializeOrigin(inner);
      return 'null';
    }
    case 'ftp': case 'http': case 'https': case 'ws': case 'wss':
      return url.scheme + '://' + url.host + (url.port !== null ? ':' + url.port : '');
    default:
      return 'null';
  }
}

/** §4.2 "strip trailing spaces from an opaque path". */
function stripTrailingSpacesFromOpaquePath(url: URLRecord): void {
  if (typeof url.path !== 'string') return;
  if (url.fragment !== null || url.query !== null) return;
  let end = url.path.length;
  while (end > 0 && url.path[end - 1] === ' ') end--;
  url.path = StringPrototypeSlice(url.path, 0, end);
}

/** The API's URL parser (§4.4): parse `base` first, then `input` against it. */
function parseWithBase(input: string, base?: string): URLRecord | null {
  let baseRecord: URLRecord | null = null;
  if (base !== undefined) {
    baseRecord = basicParse(base, null);
    if (!baseRecord) return null;
  }
  return basicParse(input, baseRecord);
}

// ---------------------------------------------------------------------------------------------
// URLSearchParams (§6.2) and application/x-www-form-urlencoded (§5): a sandbox module
// (./sandbox/search-params.ts), loaded on first use; before that no URLSearchParams can exist.

/** WebIDL USVString conversion: lone surrogates become U+FFFD. */
const toUSV = (v: unknown): string => StringPrototypeToWellFormed(String(v));

export type URLSearchParams = InstanceType<SearchParamsApi['URLSearchParams']>;
let searchParamsApi: SearchParamsApi | undefined;

export function searchParams(): SearchParamsApi {
  if (searchParamsApi !== undefined) return searchParamsApi;
  const loaded = createModule<SearchParamsDeps, SearchParamsApi>('url-search-params', {
    utf8Encode,
    utf8Decode,
    pctDecodeBytes,
    formEncode: (text) => pctEncodeString(text, formSet, true),
    setQuery: (url, query) => setQueryFromParams(url as URL, query),
  });
  markNotSerializable(loaded.URLSearchParams);
  searchParamsApi = loaded;
  return loaded;
}

/** Whether `value` is a URLSearchParams of this runtime; never loads the module to say no. */
export function isURLSearchParams(value: unknown): value is URLSearchParams {
  return searchParamsApi !== undefined && value instanceof searchParamsApi.URLSearchParams;
}

// ---------------------------------------------------------------------------------------------
// URL (§6.1)

let setQueryFromParams: (url: URL, query: string | null) => void;

export class URL {
  #url: URLRecord;
  #params: URLSearchParams | null = null;

  constructor(url: string, base?: string) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'URL': 1 argument required, but only 0 present.");
    const record = parseWithBase(toUSV(url), base === undefined ? undefined : toUSV(base));
    if (!record) throw new TypeError(`Invalid URL string.`);
    this.#url = record;
  }

  // workerd has both, and neither does anything (Blob URLs are not implemented there): a
  // non-Blob argument is a TypeError, anything else an Error. (Rest parameters: length 0.)
  static createObjectURL(...args: unknown[]): string {
    const BlobClass = (globalThis as { Blob?: Function }).Blob;
    if (args.length === 0 || typeof BlobClass !== 'function' || !(args[0] instanceof BlobClass)) {
      throw new TypeError("Failed to execute 'createObjectURL' on 'URL': parameter 1 is not of type 'File or Blob'.");
    }
    throw new Error('URL.createObjectURL() is not implemented');
  }
  static revokeObjectURL(...args: unknown[]): void {
    if (args.length === 0) throw new TypeError("Failed to execute 'revokeObjectURL' on 'URL': parameter 1 is not of type 'USVString'.");
    throw new Error('URL.revokeObjectURL() is not implemented');
  }

  static canParse(url: string, base?: string): boolean {
    if (arguments.length === 0) throw new TypeError("Failed to execute 'canParse' on 'URL': 1 argument required, but only 0 present.");
    return parseWithBase(toUSV(url), base === undefined ? undefined : toUSV(base)) !== null;
  }

  static parse(url: string, base?: string): URL | null {
    if (arguments.length === 0) throw new TypeError("Failed to execute 'parse' on 'URL': 1 argument required, but only 0 present.");
    try {
      return new URL(url, base);
    } catch {
      return null;
    }
  }

  // §6.1: the query object's list mirrors the URL's query.
  #syncParams(): void {
    if (this.#params) {
      const api = searchParams();
      api.setList(this.#params, this.#url.query === null ? [] : api.parseUrlencoded(this.#url.query));
    }
  }

  get href(): string { return serializeURL(this.#url); }
  set href(value: string) {
    const record = basicParse(toUSV(value), null);
    if (!record) throw new TypeError(`Invalid URL string.`);
    this.#url = record;
    this.#syncParams();
  }
  toString(): string { return serializeURL(this.#url); }
  toJSON(): string { return serializeURL(this.#url); }

  get origin(): string { return serializeOrigin(this.#url); }

  get protocol(): string { return this.#url.scheme + ':'; }
  set protocol(value: string) { basicParse(toUSV(value) + ':', null, this.#url, SCHEME_START); }

  get username(): string { return this.#url.username; }
  set username(value: string) {
    if (cannotHaveUsernamePasswordPort(this.#url)) return;
    this.#url.username = pctEncodeString(toUSV(value), userinfoSet);
  }

  get password(): string { return this.#url.password; }
  set password(value: string) {
    if (cannotHaveUsernamePasswordPort(this.#url)) return;
    this.#url.password = pctEncodeString(toUSV(value), userinfoSet);
  }

  get host(): string {
    const u = this.#url;
    if (u.host === null) return '';
    return u.port === null ? u.host : u.host + ':' + u.port;
  }
  set host(value: string) {
    if (typeof this.#url.path === 'string') return;
    this.#parseInto(toUSV(value), HOST);
  }

  get hostname(): string { return this.#url.host ?? ''; }
  set hostname(value: string) {
    if (typeof this.#url.path === 'string') return;
    this.#parseInto(toUSV(value), HOSTNAME);
  }

  get port(): string { return this.#url.port === null ? '' : String(this.#url.port); }
  set port(value: string) {
    if (cannotHaveUsernamePasswordPort(this.#url)) return;
    const v = toUSV(value);
    if (v === '') this.#url.port = null;
    else this.#parseInto(v, PORT);
  }

  get pathname(): string { return serializePath(this.#url); }
  set pathname(value: string) {
    if (typeof this.#url.path === 'string') return;
    const copy = { ...this.#url, path: [] as string[] };
    if (basicParse(toUSV(value), null, copy, PATH_START)) this.#url = copy;
  }

  get search(): string {
    const q = this.#url.query;
    return q === null || q === '' ? '' : '?' + q;
  }
  set search(value: string) {
    let v = toUSV(value);
    if (v === '') {
      this.#url.query = null;
      if (this.#params) searchParams().setList(this.#params, []);
      stripTrailingSpacesFromOpaquePath(this.#url);
      return;
    }
    if (StringPrototypeStartsWith(v, '?')) v = StringPrototypeSlice(v, 1);
    const copy = { ...this.#url, query: '' };
    if (basicParse(v, null, copy, QUERY)) this.#url = copy;
    this.#syncParams();
  }

  get searchParams(): URLSearchParams {
    // Created on first use rather than in the constructor: most URLs never need one.
    if (!this.#params) {
      const api = searchParams();
      const params = new api.URLSearchParams();
      api.attach(params, this, this.#url.query === null ? [] : api.parseUrlencoded(this.#url.query));
      this.#params = params;
    }
    return this.#params;
  }

  get hash(): string {
    const f = this.#url.fragment;
    return f === null || f === '' ? '' : '#' + f;
  }
  set hash(value: string) {
    let v = toUSV(value);
    if (v === '') {
      this.#url.fragment = null;
      stripTrailingSpacesFromOpaquePath(this.#url);
      return;
    }
    if (StringPrototypeStartsWith(v, '#')) v = StringPrototypeSlice(v, 1);
    const copy = { ...this.#url, fragment: '' };
    if (basicParse(v, null, copy, FRAGMENT)) this.#url = copy;
  }

  // Setters parse into a copy so a failure leaves the URL untouched (the spec's parser only
  // writes fields it has fully validated, which a copy gives us for free).
  #parseInto(value: string, state: number): void {
    const copy = { ...this.#url, path: typeof this.#url.path === 'string' ? this.#url.path : ArrayPrototypeSlice(this.#url.path) };
    if (basicParse(value, null, copy, state)) this.#url = copy;
  }

  static {
    setQueryFromParams = (url, query) => {
      url.#url.query = query;
      if (query === null) stripTrailingSpacesFromOpaquePath(url.#url);
    };
  }
}

// Literal names: a bundler may rename the class (e.g. to _URL).
ObjectDefineProperty(URL.prototype, SymbolToStringTag, { __proto__: null, value: 'URL', configurable: true });

/**
 * URL for the platform's own code that works through URL objects (URLPattern's polyfill): the
 * components' accessors are its own prototype's, copied here before tenant code runs, so what
 * tenant code does to URL.prototype (or to the global URL) changes nothing for it.
 */
export class SafeURL extends URL {}
for (const name of ['href', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash']) {
  ObjectDefineProperty(SafeURL.prototype, name, { __proto__: null, ...ObjectGetOwnPropertyDescriptor(URL.prototype, name) });
}

/** Parse an absolute URL string (no base): the serialized URL, or null if it is invalid. */
export function parseAbsoluteURL(input: string): string | null {
  const record = basicParse(toUSV(input), null);
  return record ? serializeURL(record) : null;
}
