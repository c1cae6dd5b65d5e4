// URL and URLSearchParams: parsing corner cases, setters, searchParams sync, IDNA, statics.
import { probeRoutes, err } from './_probe.js';

const PARTS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
const parts = (u) => PARTS.map((k) => u[k]);
const parse = (input, base) => {
  try {
    return parts(base === undefined ? new URL(input) : new URL(input, base));
  } catch (e) {
    return `throws ${e.constructor.name}`;
  }
};

const PARSE_CASES = [
  ['http://example.com'], ['HTTP://EXAMPLE.COM:80/a/../b/./c?x#y'], ['  http://a.com/  '], ['http://a\tb.com/\n'],
  ['/foo', 'http://a/b/c'], ['../../x', 'http://a/b/c/d'], ['?q', 'http://a/b?x#f'], ['#h', 'http://a/b?x'], ['//other/x', 'https://a/b'],
  ['http://1.2.3/'], ['http://0x7f.1/'], ['http://0300.0250.1.1/'], ['http://256.256.256.256/'], ['http://1.2.3.4.5/'],
  ['http://4294967295/'], ['http://4294967296/'], ['http://[::1]/'], ['http://[1:0:0:0:0:0:0:1]/'], ['http://[::ffff:192.168.0.1]/'],
  ['http://[1::]/'], ['http://[::]/'], ['http://[1:2::3:4]:8080/'], ['http://[0:0:1:0:0:0:1:0]/'], ['http://[1:2:3]/'], ['http://[g::]/'],
  ['http://[::1.2.3]/'], ['http://[1:2:3:4:5:6:7:8:9]/'], ['http://[::1]x/'],
  ['http://user:pa ss@host/'], ['http://us@er:p@ss@host/'], ['http://@host/'], ['http://:@host/'], ['http://a:b@/'],
  ['http://münchen.de/'], ['http://xn--mnchen-3ya.de/'], ['http://EXAMPLE.Com./'], ['http://a%41.com/'], ['http://a%zz.com/'],
  ['http://a b/'], ['http://a<b/'], ['http://ex%00ample/'], ['file:///C:/a/../../b'], ['file:c:\\foo\\bar'], ['file://localhost/etc/passwd'],
  ['file://host/share'], ['file:/a'], ['file:..', 'file:///C:/x/y'], ['/d', 'file:///C:/x'], ['file:////foo'], ['file://C|/x'],
  ['mailto:someone@example.com'], ['data:text/plain,hello world'], ['javascript:alert(1) '], ['a:b c ?x'], ['a:b c #x'], ['a:b  '],
  ['foo://host/p a t h?q u#f r'], ['foo://ho st/'], ['foo://h%20st/'], ['foo:'], ['foo:/'], ['foo:/.//p'], ['foo://'], ['sc://ñ.test/'],
  ['blob:https://a.com/uuid'], ['blob:foo:bar'], ['ws://a:80/'], ['wss://a:443/'], ['ftp://a:21/'], ['http://a:65536/'], ['http://a:0x10/'], ['http://a:/'],
  ['http://a:00080/'], ['http://a/%2e/b/%2E%2e/c'], ['http://a/b/..'], ['http://a/b/.'], ['http://a/?\'"<>`'], ['https://a/#"<>` x'],
  ['http://a/€?€#€'], ['http://a/\uD800'], ['http://a/%'], ['http:a'], ['http:/a'], ['http:\\\\a\\b'], ['\\\\x\\y', 'http://a/'],
  ['http:', 'http://a/b'], ['HTTP://a', 'http://b'], ['https:x', 'http://a/'], ['', 'http://a/b?c#d'], ['x', 'mailto:a'], ['#x', 'mailto:a'],
  ['non-special://[1:2::3]:80/'], ['non-special://1.2.3.4/'], ['http://a/c|d^'], ['http://192.168.0.257/'], ['http://1.2.3.09/'],
  ['http://08/'], ['http://0x/'], ['http://a.0x/'], ['http://foo.09/'], ['http://foo.0x4/'], ['http://a..b/'], ['https://x/\u0000\u001f'],
  ['  \u0000 http://a/ \u001f'], ['http://a/?%zz&%41'], ['http://xn--/'], ['http://xn--abc-.com/'], ['http://a.xn--ls8h/'], ['http://☃.net/'],
  ['http://Ａ.com/'], ['http://ß.de/'], ['http://a\u00ADb/'], ['x', 'not a url'], ['http://a/b', 'http://[bad'], ['urn:isbn:0451450523'],
  ['http://a/ ?a b#c d'], ['HTTPS://a.B.c/%7e%7E'], ['http://a/../../..'], ['http://a/./.././c/'], ['git+ssh://git@github.com/a/b.git'],
];

const IDNA_CASES = [
  'http://münchen.de/', 'http://MÜNCHEN.de/', 'http://☃.net/', 'http://xn--n3h.net/', 'http://ß.de/', 'http://faß.de/', 'http://ς.gr/',
  'http://日本語.jp/', 'http://例え.テスト/', 'http://Ａ.com/', 'http://a\u00ADb/', 'http://a\u200Db/', 'http://a。b/', 'http://xn--a.com/',
  'http://xn--zz/', 'http://-a.com/', 'http://a-.com/', 'http://ab--c.com/', 'http://💩.la/', 'http://\u0661.com/', 'http://a.b\u0301.c/',
  'http://xn--ls8h.la/', 'http://\uFFFD.com/', 'http://a\u0000b/', 'http://%F0%9F%92%A9.la/', 'http://%C3%BC.de/', 'http://I.com/', 'http://İ.com/',
];

const SETTERS = [
  ['http://a/b', 'protocol', 'https'], ['http://a/b', 'protocol', 'foo'], ['foo://a/b', 'protocol', 'http'], ['http://a:443/', 'protocol', 'https:'],
  ['http://a/', 'protocol', 'file'], ['file:///x', 'protocol', 'http'], ['http://a/', 'protocol', '1x'],
  ['http://a/', 'username', 'u s@:'], ['http://a/', 'password', 'p:w'], ['file:///x', 'username', 'u'], ['mailto:x', 'username', 'u'],
  ['http://a/', 'host', 'b.com:81'], ['http://a/', 'host', 'B.com:80'], ['http://a:1/', 'host', 'c'], ['http://a/', 'host', ''], ['http://a/', 'host', 'x y'],
  ['http://a/', 'hostname', 'b:81'], ['http://a/', 'hostname', '[::1]'], ['foo://a/', 'host', ''], ['mailto:x', 'host', 'a'],
  ['http://a/', 'hostname', 'münchen.de'], ['file://h/x', 'host', 'localhost'],
  ['http://a/', 'port', '8080'], ['http://a/', 'port', '80'], ['http://a:1/', 'port', ''], ['http://a/', 'port', '99999'], ['http://a/', 'port', '12ab'], ['http://a/', 'port', 'x'],
  ['http://a/x', 'pathname', '/a b/../c'], ['http://a/x', 'pathname', 'noslash'], ['foo:opaque', 'pathname', '/x'], ['foo://h/x', 'pathname', ''], ['http://a/x', 'pathname', '?#'],
  ['http://a/', 'search', '?a=1 2#'], ['http://a/?x', 'search', ''], ['http://a/', 'search', '??'], ['http://a/', 'search', "'"], ['foo:a ', 'search', ''],
  ['http://a/', 'hash', 'x y'], ['http://a/#x', 'hash', ''], ['http://a/', 'hash', '##'], ['foo:a #b', 'hash', ''],
  ['http://a/', 'href', 'https://b/c'], ['http://a/', 'href', 'rel'],
];

export default probeRoutes({
  '/parse': () => Object.fromEntries(PARSE_CASES.map(([input, base]) => [JSON.stringify(base ? [input, base] : input), () => parse(input, base)])),
  '/idna': () => Object.fromEntries(IDNA_CASES.map((input) => [input, () => parse(input)])),
  '/setters': () =>
    Object.fromEntries(
      SETTERS.map(([href, key, value]) => [
        `${href} .${key}=${JSON.stringify(value)}`,
        () => {
          const u = new URL(href);
          const e = err(() => {
            u[key] = value;
          });
          return [e, u.href];
        },
      ]),
    ),
  '/api': () => ({
    canParse: () => [URL.canParse('http://a/'), URL.canParse('nope'), URL.canParse('/x', 'http://a/'), URL.canParse('/x', 'nope')],
    parseStatic: () => (typeof URL.parse === 'function' ? [URL.parse('http://a/b')?.href, URL.parse('nope')] : 'no URL.parse'),
    toJSON: () => [new URL('http://a/b?c').toJSON(), JSON.stringify({ u: new URL('http://a/') })],
    toString: () => String(new URL('http://a/b')),
    noArgs: () => err(() => new URL()),
    invalid: () => err(() => new URL('nope')),
    invalidBase: () => err(() => new URL('/x', 'nope')),
    nonStringInput: () => new URL({ toString: () => 'http://obj/' }).href,
    urlAsBase: () => new URL('x', new URL('http://a/b/c')).href,
    undefinedBase: () => new URL('http://a/', undefined).href,
    toStringTag: () => Object.prototype.toString.call(new URL('http://a/')),
    ownKeys: () => Object.keys(new URL('http://a/')),
    jsonOfUrl: () => JSON.stringify(new URL('http://a/x')),
    createObjectURL: () => typeof URL.createObjectURL,
    searchParamsSame: () => {
      const u = new URL('http://a/?x=1');
      return u.searchParams === u.searchParams;
    },
    searchParamsSync: () => {
      const u = new URL('http://a/?x=1&y=2');
      u.searchParams.append('z', 'a b');
      const a = u.href;
      u.search = '?q=é';
      const b = [...u.searchParams];
      u.searchParams.delete('q');
      const c = [u.href, u.search];
      u.href = 'http://b/?k=v';
      return [a, b, c, [...u.searchParams]];
    },
    searchParamsEmptyQuestion: () => {
      const u = new URL('http://a/?');
      const before = u.href;
      u.searchParams.sort();
      return [before, u.href];
    },
    hashWithSpaces: () => {
      const u = new URL('http://a/');
      u.hash = 'a b';
      return u.href;
    },
  }),
  '/params': () => ({
    // WebIDL record<USVString, USVString>: keys equal once lone surrogates are U+FFFD are one entry, the last value wins.
    recordSurrogateKeys: () => [[...new URLSearchParams({ 'a\uD800': '1', 'a\uDC00': '2' })], [...new URLSearchParams({ '\uD835x': '1', xx: '2', '\uD83Dx': '3' })]],
    parse: () => [...new URLSearchParams('a=1&b=2&a=3&=x&y=&&z')],
    plus: () => [...new URLSearchParams('q=a+b&r=a%2Bb&s=%zz&t=%E2%82%AC')],
    leadingQuestion: () => [...new URLSearchParams('?a=1')],
    fromRecord: () => [...new URLSearchParams({ a: '1', b: 2 })],
    fromPairs: () => [...new URLSearchParams([['a', '1'], ['a', '2']])],
    badPair: () => err(() => new URLSearchParams([['a']])),
    fromParams: () => String(new URLSearchParams(new URLSearchParams('a=1'))),
    serialize: () => String(new URLSearchParams({ q: 'a b&c=d', e: 'é€', s: "*-._~!'()" })),
    getAllHas: () => {
      const p = new URLSearchParams('a=1&a=2&b=3');
      return [p.get('a'), p.getAll('a'), p.get('x'), p.has('b'), p.has('a', '2'), p.has('a', '9'), p.size];
    },
    deleteWithValue: () => {
      const p = new URLSearchParams('a=1&a=2&b=3');
      p.delete('a', '1');
      return String(p);
    },
    set: () => {
      const p = new URLSearchParams('a=1&b=2&a=3');
      p.set('a', 'x');
      return String(p);
    },
    sort: () => {
      const p = new URLSearchParams('z=1&a=2&m=3&a=1&\uD83D\uDE00=x&\uFFFD=y');
      p.sort();
      return [...p.keys()];
    },
    forEach: () => {
      const out = [];
      new URLSearchParams('a=1&b=2').forEach((v, k) => out.push(k + v));
      return out;
    },
    toStringTag: () => Object.prototype.toString.call(new URLSearchParams()),
    loneSurrogate: () => String(new URLSearchParams({ a: '\uD800' })),
    noArgsGet: () => err(() => new URLSearchParams().get()),
    iteratorTag: () => Object.prototype.toString.call(new URLSearchParams('a=1').entries()),
  }),
});
