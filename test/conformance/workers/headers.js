// Headers: validation (error types and messages), value normalisation, ordering, combining,
// getSetCookie, iteration, guards.
import { probeRoutes, err } from './_probe.js';

export default probeRoutes({
  '/basics': () => ({
    appendGet: () => {
      const h = new Headers({ 'Content-Type': 'text/plain', 'X-A': '1' });
      h.append('x-a', '2');
      return [h.get('x-a'), h.get('X-A'), h.get('content-type'), h.get('missing'), h.has('X-a'), h.has('nope')];
    },
    setDelete: () => {
      const h = new Headers([['a', '1'], ['a', '2'], ['b', '3']]);
      h.set('A', '9');
      h.delete('B');
      return [...h];
    },
    fromRecord: () => [...new Headers({ b: '2', a: '1', C: '3' })],
    fromPairs: () => [...new Headers([['b', '2'], ['a', '1'], ['B', '3']])],
    fromHeaders: () => {
      const a = new Headers({ x: '1' });
      const b = new Headers(a);
      b.set('x', '2');
      return [a.get('x'), b.get('x')];
    },
    fromIterable: () => [...new Headers(new Map([['m', '1'], ['n', '2']]))],
    fromUndefined: () => [...new Headers(undefined)],
    fromNull: () => err(() => new Headers(null)),
    fromString: () => err(() => new Headers('x')),
    fromNumber: () => err(() => new Headers(5)),
    pairTooShort: () => err(() => new Headers([['a']])),
    pairTooLong: () => err(() => new Headers([['a', 'b', 'c']])),
    pairNotIterable: () => err(() => new Headers([5])),
    recordNonString: () => [...new Headers({ a: 1, b: true, c: null, d: undefined })],
    symbolKeys: () => [...new Headers({ [Symbol('s')]: 'x', a: '1' })],
    getNonString: () => {
      const h = new Headers({ '1': 'one', null: 'n' });
      return [h.get(1), h.get(null)];
    },
    appendMissingValue: () => err(() => new Headers().append('x')),
    appendNoArgs: () => err(() => new Headers().append()),
    getNoArgs: () => err(() => new Headers().get()),
  }),
  '/validation': () => ({
    nameSpace: () => err(() => new Headers().append('a b', 'x')),
    nameEmpty: () => err(() => new Headers().append('', 'x')),
    nameNonAscii: () => err(() => new Headers().append('é', 'x')),
    nameColon: () => err(() => new Headers().append('a:', 'x')),
    nameTokens: () => err(() => new Headers().append("!#$%&'*+-.^_`|~09AZaz", 'x')),
    nameParen: () => err(() => new Headers().append('a(b', 'x')),
    nameSlash: () => err(() => new Headers().append('a/b', 'x')),
    nameBracket: () => err(() => new Headers().append('a[b', 'x')),
    nameDel: () => err(() => new Headers().append('a\x7f', 'x')),
    valueLF: () => err(() => new Headers().set('x', 'a\nb')),
    valueCR: () => err(() => new Headers().set('x', 'a\rb')),
    valueNUL: () => err(() => new Headers().set('x', 'a\0b')),
    valueEuro: () => err(() => new Headers().set('x', '€')),
    valueLatin1: () => {
      const h = new Headers();
      h.set('y', 'é');
      return [h.get('y'), h.get('y').charCodeAt(0)];
    },
    valueTab: () => err(() => new Headers().set('x', 'a\tb')),
    valueDel: () => {
      const h = new Headers();
      h.set('x', 'a\x7fb');
      return h.get('x');
    },
    valueControl: () => err(() => new Headers().set('x', 'a\x01b')),
    getInvalidName: () => err(() => new Headers().get('a b')),
    hasInvalidName: () => err(() => new Headers().has('a b')),
    deleteInvalidName: () => err(() => new Headers().delete('a b')),
    initInvalidName: () => err(() => new Headers({ 'a b': '1' })),
    initInvalidValue: () => err(() => new Headers({ a: 'x\ny' })),
    errorShape: () => err(() => new Headers().append('a b', '1')),
  }),
  '/normalise': () => ({
    trimsWhitespace: () => {
      const h = new Headers();
      h.set('x', ' \t v a l \t ');
      return JSON.stringify(h.get('x'));
    },
    trimsLeadingCRLF: () => err(() => new Headers().set('x', '\r\nv')),
    trimsTrailingCRLF: () => {
      try {
        const h = new Headers();
        h.set('x', 'v\r\n');
        return JSON.stringify(h.get('x'));
      } catch (e) {
        return `${e.constructor.name}: ${e.message}`;
      }
    },
    empty: () => {
      const h = new Headers();
      h.set('z', '');
      return [h.get('z'), h.has('z'), [...h]];
    },
    onlySpaces: () => {
      const h = new Headers();
      h.set('z', '   ');
      return JSON.stringify(h.get('z'));
    },
    lowercasedNames: () => [...new Headers({ 'X-MiXeD': 'v' })].map(([k]) => k),
    innerSpacesKept: () => new Headers({ a: 'x   y' }).get('a'),
  }),
  '/combine': () => ({
    combinedGet: () => {
      const h = new Headers();
      h.append('a', '1');
      h.append('A', '2');
      h.append('a', '');
      return JSON.stringify(h.get('a'));
    },
    iterationSortedCombined: () => [...new Headers([['b', '1'], ['a', 'x'], ['B', '2'], ['c', '']])],
    setCookieSeparate: () =>
      [...new Headers([['Set-Cookie', 'a=1'], ['x', '1'], ['set-cookie', 'b=2'], ['X', '2']])],
    setCookieGet: () => new Headers([['Set-Cookie', 'a=1'], ['set-cookie', 'b=2']]).get('set-cookie'),
    getSetCookie: () => new Headers([['Set-Cookie', 'a=1'], ['set-cookie', 'b=2, c=3']]).getSetCookie(),
    getSetCookieNone: () => new Headers({ a: '1' }).getSetCookie(),
    getSetCookieAfterDelete: () => {
      const h = new Headers([['Set-Cookie', 'a=1']]);
      h.delete('set-cookie');
      return h.getSetCookie();
    },
    setReplacesAll: () => {
      const h = new Headers([['set-cookie', 'a=1'], ['set-cookie', 'b=2']]);
      h.set('Set-Cookie', 'c=3');
      return h.getSetCookie();
    },
    getAllIsGone: () => typeof new Headers().getAll,
    keys: () => [...new Headers([['b', '1'], ['a', '2'], ['set-cookie', 'x'], ['set-cookie', 'y']]).keys()],
    values: () => [...new Headers([['b', '1'], ['a', '2'], ['a', '3']]).values()],
    forEach: () => {
      const out = [];
      const h = new Headers([['b', '1'], ['a', '2']]);
      h.forEach(function (value, key, target) {
        out.push([key, value, target === h, this === undefined ? 'undef' : typeof this]);
      });
      return out;
    },
    forEachThisArg: () => {
      const out = [];
      const marker = { m: 1 };
      new Headers({ a: '1' }).forEach(function () {
        out.push(this === marker);
      }, marker);
      return out;
    },
    mutationDuringIteration: () => {
      const h = new Headers({ a: '1', c: '3' });
      const seen = [];
      for (const [k] of h) {
        seen.push(k);
        if (k === 'a') h.append('b', '2');
      }
      return seen;
    },
    deleteDuringIteration: () => {
      const h = new Headers({ a: '1', b: '2', c: '3' });
      const seen = [];
      for (const [k] of h) {
        seen.push(k);
        if (k === 'a') h.delete('b');
      }
      return seen;
    },
    iteratorProto: () => {
      const it = new Headers({ a: '1' })[Symbol.iterator]();
      return [Object.prototype.toString.call(it), typeof it.next, it.next(), it.next()];
    },
    entriesIsIterator: () => new Headers().entries === new Headers()[Symbol.iterator],
  }),
  '/shape': () => ({
    toStringTag: () => Object.prototype.toString.call(new Headers()),
    callWithoutNew: () => err(() => Headers()),
    protoMethods: () => Object.getOwnPropertyNames(Headers.prototype).sort(),
    length: () => Headers.length,
    instanceKeys: () => Object.keys(new Headers({ a: '1' })),
    jsonStringify: () => JSON.stringify(new Headers({ a: '1' })),
    subclass: () => {
      class H extends Headers {}
      const h = new H({ a: '1' });
      return [h instanceof Headers, h.get('a')];
    },
    requestGuard: () => {
      const r = new Request('http://a/', { headers: { a: '1' } });
      r.headers.set('b', '2');
      return [...r.headers];
    },
    responseGuard: () => {
      const r = new Response('x', { headers: { a: '1' } });
      r.headers.set('set-cookie', 'c=1');
      return [...r.headers];
    },
    redirectGuard: () => err(() => Response.redirect('http://a/').headers.set('a', 'b')),
    errorGuard: () => err(() => Response.error().headers.set('a', 'b')),
  }),
  '/incoming': (request) => ({
    immutable: () => err(() => request.headers.set('a', 'b')),
    deleteImmutable: () => err(() => request.headers.delete('x-probe')),
    seen: () => request.headers.get('x-probe'),
    repeated: () => request.headers.get('x-rep'),
    cookies: () => request.headers.get('cookie'),
  }),
});
