// TextEncoder/TextDecoder (UTF-8: fatal, BOM, streaming, labels) and atob/btoa.
import { probeRoutes, err } from './_probe.js';

const dec = (bytes, options, decodeOptions) => new TextDecoder('utf-8', options).decode(new Uint8Array(bytes), decodeOptions);
const cps = (s) => Array.from(s, (c) => c.codePointAt(0));

export default probeRoutes({
  '/encoder': () => ({
    encode: () => new TextEncoder().encode('hé€😀'),
    encodeEmpty: () => new TextEncoder().encode(),
    encodeUndefined: () => new TextEncoder().encode(undefined),
    loneSurrogates: () => new TextEncoder().encode('a\uD800b\uDC00'),
    encoding: () => new TextEncoder().encoding,
    encodeInto: () => {
      const dest = new Uint8Array(5);
      const r = new TextEncoder().encodeInto('a€😀', dest);
      return [r, dest];
    },
    encodeIntoExact: () => {
      const dest = new Uint8Array(4);
      return [new TextEncoder().encodeInto('😀x', dest), dest];
    },
    encodeIntoBadDest: () => err(() => new TextEncoder().encodeInto('a', [])),
    toStringTag: () => Object.prototype.toString.call(new TextEncoder()),
    returnsUint8Array: () => new TextEncoder().encode('a').constructor.name,
  }),
  '/decoder': () => ({
    basic: () => dec([104, 195, 169, 226, 130, 172]),
    bomStripped: () => cps(dec([0xef, 0xbb, 0xbf, 0x41])),
    bomKept: () => cps(dec([0xef, 0xbb, 0xbf, 0x41], { ignoreBOM: true })),
    doubleBom: () => cps(dec([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf])),
    invalidReplaced: () => cps(dec([0x41, 0xff, 0xc3, 0x41, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98])),
    overlong: () => cps(dec([0xc0, 0x80, 0xe0, 0x80, 0x80])),
    fatal: () => err(() => dec([0x41, 0xff], { fatal: true })),
    fatalTruncated: () => err(() => dec([0xf0, 0x9f], { fatal: true })),
    fatalOk: () => dec([0x41], { fatal: true }),
    attributes: () => {
      const d = new TextDecoder('UTF8', { fatal: true, ignoreBOM: true });
      return [d.encoding, d.fatal, d.ignoreBOM];
    },
    labels: () => ['utf-8', 'UTF-8', ' utf-8 ', 'unicode-1-1-utf-8', 'utf8', 'x-unicode20utf8'].map((l) => {
      try {
        return new TextDecoder(l).encoding;
      } catch (e) {
        return `throws ${e.constructor.name}`;
      }
    }),
    otherLabels: () => ['utf-16le', 'latin1', 'windows-1252', 'iso-8859-2', 'shift_jis', 'gbk', 'utf-16be'].map((l) => {
      try {
        return new TextDecoder(l).encoding;
      } catch (e) {
        return `throws ${e.constructor.name}`;
      }
    }),
    unknownLabel: () => err(() => new TextDecoder('nope')),
    replacementLabel: () => err(() => new TextDecoder('iso-2022-kr')),
    latin1Decode: () => {
      try {
        return cps(new TextDecoder('latin1').decode(new Uint8Array([0x80, 0xe9, 0x41])));
      } catch (e) {
        return `throws ${e.constructor.name}`;
      }
    },
    utf16Decode: () => {
      try {
        return new TextDecoder('utf-16le').decode(new Uint8Array([0x41, 0, 0x3d, 0xd8, 0, 0xde]));
      } catch (e) {
        return `throws ${e.constructor.name}`;
      }
    },
    streaming: () => {
      const d = new TextDecoder();
      const bytes = [0x68, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0x21];
      return bytes.map((b) => d.decode(new Uint8Array([b]), { stream: true })).concat(d.decode());
    },
    streamingTruncatedEnd: () => {
      const d = new TextDecoder();
      return [d.decode(new Uint8Array([0xf0, 0x9f]), { stream: true }), cps(d.decode())];
    },
    streamingBom: () => {
      const d = new TextDecoder();
      return [d.decode(new Uint8Array([0xef, 0xbb]), { stream: true }), d.decode(new Uint8Array([0xbf, 0x41]), { stream: true }), d.decode(new Uint8Array([0xef, 0xbb, 0xbf]))];
    },
    streamingFatal: () => {
      const d = new TextDecoder('utf-8', { fatal: true });
      d.decode(new Uint8Array([0xf0]), { stream: true });
      return [err(() => d.decode()), d.decode(new Uint8Array([0x41]))];
    },
    inputs: () => [
      new TextDecoder().decode(),
      new TextDecoder().decode(undefined),
      new TextDecoder().decode(new Uint8Array([65, 66]).buffer),
      new TextDecoder().decode(new DataView(new Uint8Array([65, 66, 67]).buffer, 1)),
      new TextDecoder().decode(new Uint16Array([0x4241])),
    ],
    badInput: () => err(() => new TextDecoder().decode('abc')),
    toStringTag: () => Object.prototype.toString.call(new TextDecoder()),
  }),
  '/base64': () => ({
    btoa: () => [btoa(''), btoa('a'), btoa('ab'), btoa('abc'), btoa('\u00ff\u00fe'), btoa(undefined), btoa(null), btoa(12)],
    btoaNonLatin1: () => err(() => btoa('€')),
    atob: () => [atob('YQ=='), atob('YQ'), atob(' Y Q = = '), atob('YWJj'), atob(''), atob('/+8=')].map(cps),
    atobInvalid: () => ['YQ=', 'Y', 'YQ===', 'Y=Q=', '*', 'YQ==a', '\u00ff'].map((s) => {
      try {
        return cps(atob(s));
      } catch (e) {
        return `throws ${e.constructor.name}:${e.name}:${e.code}`;
      }
    }),
    atobNull: () => cps(atob(null)),
    atobUndefined: () => err(() => atob(undefined)),
    atobNoArgs: () => err(() => atob()),
    atobErrorShape: () => err(() => atob('*')),
  }),
});
