// crypto.subtle: digests, HMAC, AES-GCM, ECDSA/Ed25519 shapes, key import/export, errors.
// Deterministic outputs are compared byte for byte; random ones by shape.
import { probeRoutes, aerr } from './_probe.js';

const enc = new TextEncoder();
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

export default probeRoutes({
  '/digest': () => ({
    sha1: async () => hex(await crypto.subtle.digest('SHA-1', enc.encode('abc'))),
    sha256: async () => hex(await crypto.subtle.digest('SHA-256', enc.encode('abc'))),
    sha384: async () => hex(await crypto.subtle.digest({ name: 'SHA-384' }, enc.encode('abc'))),
    sha512: async () => hex(await crypto.subtle.digest('sha-512', enc.encode(''))),
    md5: async () => hex(await crypto.subtle.digest('MD5', enc.encode('abc'))),
    unknown: () => aerr(() => crypto.subtle.digest('SHA-3', enc.encode('abc'))),
    badData: () => aerr(() => crypto.subtle.digest('SHA-256', 'abc')),
    fromBuffer: async () => hex(await crypto.subtle.digest('SHA-256', enc.encode('abc').buffer)),
  }),
  '/hmac': () => ({
    signVerify: async () => {
      const key = await crypto.subtle.importKey('raw', enc.encode('secret'), { name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'verify']);
      const sig = await crypto.subtle.sign('HMAC', key, enc.encode('message'));
      const ok = await crypto.subtle.verify('HMAC', key, sig, enc.encode('message'));
      const bad = await crypto.subtle.verify('HMAC', key, sig, enc.encode('other'));
      return [hex(sig), ok, bad, key.type, key.extractable, key.algorithm, key.usages];
    },
    exportRaw: async () => {
      const key = await crypto.subtle.importKey('raw', enc.encode('k'), { name: 'HMAC', hash: 'SHA-1' }, true, ['sign']);
      return hex(await crypto.subtle.exportKey('raw', key));
    },
    exportJwk: async () => {
      const key = await crypto.subtle.importKey('raw', enc.encode('k'), { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
      return crypto.subtle.exportKey('jwk', key);
    },
    notExtractable: async () => {
      const key = await crypto.subtle.importKey('raw', enc.encode('k'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      return aerr(() => crypto.subtle.exportKey('raw', key));
    },
    wrongUsage: async () => {
      const key = await crypto.subtle.importKey('raw', enc.encode('k'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
      return aerr(() => crypto.subtle.sign('HMAC', key, enc.encode('m')));
    },
    generate: async () => {
      const key = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-512' }, true, ['sign']);
      return [key.algorithm, (await crypto.subtle.exportKey('raw', key)).byteLength];
    },
  }),
  '/aes': () => ({
    gcm: async () => {
      const key = await crypto.subtle.importKey('raw', new Uint8Array(16).fill(1), 'AES-GCM', true, ['encrypt', 'decrypt']);
      const iv = new Uint8Array(12).fill(2);
      const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, enc.encode('hello'));
      const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, ct);
      return [hex(ct), new TextDecoder().decode(pt), key.algorithm];
    },
    gcmTampered: async () => {
      const key = await crypto.subtle.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['decrypt']);
      return aerr(() => crypto.subtle.decrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, key, new Uint8Array(20)));
    },
    cbc: async () => {
      const key = await crypto.subtle.importKey('raw', new Uint8Array(32).fill(3), 'AES-CBC', false, ['encrypt']);
      return hex(await crypto.subtle.encrypt({ name: 'AES-CBC', iv: new Uint8Array(16) }, key, enc.encode('hello')));
    },
    badKeyLength: () => aerr(() => crypto.subtle.importKey('raw', new Uint8Array(15), 'AES-GCM', false, ['encrypt'])),
  }),
  '/derive': () => ({
    pbkdf2: async () => {
      const base = await crypto.subtle.importKey('raw', enc.encode('password'), 'PBKDF2', false, ['deriveBits']);
      return hex(await crypto.subtle.deriveBits({ name: 'PBKDF2', salt: enc.encode('salt'), iterations: 1000, hash: 'SHA-256' }, base, 256));
    },
    hkdf: async () => {
      const base = await crypto.subtle.importKey('raw', enc.encode('ikm'), 'HKDF', false, ['deriveBits']);
      return hex(await crypto.subtle.deriveBits({ name: 'HKDF', salt: enc.encode('s'), info: enc.encode('i'), hash: 'SHA-256' }, base, 128));
    },
  }),
  '/asymmetric': () => ({
    ecdsa: async () => {
      const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, enc.encode('m'));
      const ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pair.publicKey, sig, enc.encode('m'));
      const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
      return [sig.byteLength, ok, pair.publicKey.algorithm, Object.keys(jwk).sort(), jwk.crv];
    },
    ed25519: async () => {
      const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
      const sig = await crypto.subtle.sign('Ed25519', pair.privateKey, enc.encode('m'));
      return [sig.byteLength, await crypto.subtle.verify('Ed25519', pair.publicKey, sig, enc.encode('m'))];
    },
    rsaPss: async () => {
      const pair = await crypto.subtle.generateKey({ name: 'RSA-PSS', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign', 'verify']);
      const sig = await crypto.subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, pair.privateKey, enc.encode('m'));
      return [sig.byteLength, pair.publicKey.algorithm.modulusLength];
    },
    timingSafeEqual: () => (typeof crypto.subtle.timingSafeEqual === 'function'
      ? [crypto.subtle.timingSafeEqual(new Uint8Array([1]), new Uint8Array([1])), crypto.subtle.timingSafeEqual(new Uint8Array([1]), new Uint8Array([2]))]
      : 'no timingSafeEqual'),
  }),
});
