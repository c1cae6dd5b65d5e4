// The iterator objects of pair-iterable interfaces (Headers, URLSearchParams), shaped as
// workerd makes them (WebIDL §3.7.10 "default iterator objects", with workerd's names): one
// class per interface and kind, named EntryIterator, KeyIterator and ValueIterator (so
// Object.prototype.toString says "[object EntryIterator]"), whose prototype inherits
// %IteratorPrototype% (so the iterator helpers work) and has an own, enumerable `next`; the
// constructor is illegal to call. A finished step is `{ done: true }`, without `value`.
//
// What is iterated is up to the interface: a source called with the index of each step,
// answering the item or `undefined` at the end. Headers hand over a snapshot (workerd iterates
// a copy taken when the iterator is made); URLSearchParams read their live list.

import {
  ObjectDefineProperty, ObjectGetPrototypeOf, ObjectSetPrototypeOf, Symbol, SymbolIterator, SymbolToStringTag,
  TypeError,
} from '../../sandbox/primordials.ts';
export type IteratorKind = 'EntryIterator' | 'KeyIterator' | 'ValueIterator';

const kCreate = Symbol('iterator.create');
const IteratorPrototype = ObjectGetPrototypeOf(ObjectGetPrototypeOf([][SymbolIterator]())) as object;

/**
 * A factory for one interface's iterators of one kind: `make(source)` returns a new iterator
 * that yields `source(0)`, `source(1)`, ... until one is `undefined`.
 */
export function iteratorFactory<T>(kind: IteratorKind): (source: (index: number) => T | undefined) => IterableIterator<T> {
  // The class is made by the first iterator: made at load, one per interface and kind, they
  // were heap in every idle isolate.
  let make: ((source: (index: number) => T | undefined) => IterableIterator<T>) | undefined;
  return (source) => (make ??= iteratorClass<T>(kind))(source);
}

function iteratorClass<T>(kind: IteratorKind): (source: (index: number) => T | undefined) => IterableIterator<T> {
  // Object.create plus private-field brands would need a class anyway: a class per factory.
  class WebIDLIterator {
    #source: ((index: number) => T | undefined) | null;
    #index = 0;

    constructor(token?: unknown, source?: (index: number) => T | undefined) {
      if (token !== kCreate) throw new TypeError('Illegal constructor');
      this.#source = source!;
    }

    next(): IteratorResult<T> {
      const source = this.#source;
      if (source === null) return { done: true } as IteratorResult<T>;
      const value = source(this.#index);
      if (value === undefined) {
        this.#source = null;
        return { done: true } as IteratorResult<T>;
      }
      this.#index++;
      return { done: false, value };
    }

    [SymbolIterator](): this { return this; }
  }
  ObjectSetPrototypeOf(WebIDLIterator.prototype, IteratorPrototype);
  const proto = WebIDLIterator.prototype;
  ObjectDefineProperty(proto, 'next', { __proto__: null, enumerable: true });
  ObjectDefineProperty(proto, SymbolToStringTag, { __proto__: null, value: kind, writable: true, configurable: true });
  ObjectDefineProperty(WebIDLIterator, 'name', { __proto__: null, value: kind, configurable: true });
  ObjectDefineProperty(WebIDLIterator, 'length', { __proto__: null, value: 0, configurable: true });
  return (source) => new WebIDLIterator(kCreate, source) as unknown as IterableIterator<T>;
}
