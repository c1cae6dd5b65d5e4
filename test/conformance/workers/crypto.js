// crypto.getRandomValues and crypto.randomUUID: shapes, limits, errors (values are random).
import { probeRoutes, err } from './_probe.js';

export default probeRoutes({
  '/random': () => ({
    returnsSameArray: () => {
      const a = new Uint8Array(8);
      return crypto.getRandomValues(a) === a;
    },
    types: () => [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array]
      .map((T) => {
        try {
          return crypto.getRandomValues(new T(2)).length;
        } catch (e) {
          return `throws ${e.constructor.name}:${e.name}`;
        }
      }),
    floats: () => [Float32Array, Float64Array].map((T) => err(() => crypto.getRandomValues(new T(2)))),
    dataView: () => err(() => crypto.getRandomValues(new DataView(new ArrayBuffer(4)))),
    quota: () => [crypto.getRandomValues(new Uint8Array(65536)).length, err(() => crypto.getRandomValues(new Uint8Array(65537)))],
    notView: () => err(() => crypto.getRandomValues([1, 2])),
    noArgs: () => err(() => crypto.getRandomValues()),
    zeroLength: () => crypto.getRandomValues(new Uint8Array(0)).length,
    randomness: () => {
      const a = crypto.getRandomValues(new Uint8Array(64));
      const b = crypto.getRandomValues(new Uint8Array(64));
      return a.some((x, i) => x !== b[i]);
    },
    unbound: () => {
      const f = crypto.getRandomValues;
      return err(() => f(new Uint8Array(2)));
    },
    uuidShape: () => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()),
    uuidUnique: () => crypto.randomUUID() !== crypto.randomUUID(),
    cryptoShape: () => [Object.prototype.toString.call(crypto), typeof crypto.subtle, typeof Crypto, typeof SubtleCrypto, typeof CryptoKey],
    digestStream: () => typeof crypto.DigestStream,
  }),
});
