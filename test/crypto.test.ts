// crypto.subtle inside the isolate, through real HTTP: known-answer vectors, round trips inside
// the worker, and cross-checks against Node's own WebCrypto on this side (keys and signatures
// made by the worker are verified here, keys made here are used by the worker), error names as
// WebCrypto and workerd give them, and the isolation of keys between isolates.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, webcrypto } from 'node:crypto';
import { serve, moduleWorker, type Served } from './support/serve.ts';
import { cryptoAsyncOps, cryptoSyncOps, MAX_DIGEST_STREAMS_PER_ISOLATE, MAX_KEYS_PER_ISOLATE } from '../src/api/crypto/host.ts';
import type { OpContext } from '../src/runtime/host-ops.ts';
import { DEFAULT_LIMITS } from '../src/runtime/types.ts';
import { MAX_CALL_BYTES } from '../src/bridge/operations.ts';

const subtle = webcrypto.subtle;
const hex = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes).toString('hex');
const b64 = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes).toString('base64');
const unb64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));

// Helpers every probe worker starts with.
const PRELUDE = `
const subtle = crypto.subtle;
const enc = new TextEncoder();
const hex = (b) => [...new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))].map((x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (s) => new Uint8Array((s.match(/../g) || []).map((h) => parseInt(h, 16)));
const b64 = (b) => { let s = ''; for (const x of new Uint8Array(b)) s += String.fromCharCode(x); return btoa(s); };
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
async function errorOf(work) {
  try { await work(); return 'no error'; }
  catch (e) { return { name: e.name, dom: e instanceof DOMException, typeError: e instanceof TypeError, message: String(e.message) }; }
}
function serveProbes(probes) {
  return {
    async fetch(request) {
      const name = new URL(request.url).pathname.slice(1);
      const input = request.method === 'POST' ? await request.json() : {};
      return Response.json(await probes[name](input));
    },
  };
}
`;

const PROBES = PRELUDE + `
const SIGNERS = [
  { name: 'ECDSA P-256', gen: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  { name: 'ECDSA P-384', gen: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: { name: 'SHA-384' } } },
  { name: 'Ed25519', gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  { name: 'RSASSA-PKCS1-v1_5', gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, sign: 'RSASSA-PKCS1-v1_5' },
  { name: 'RSA-PSS', gen: { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-384' }, sign: { name: 'RSA-PSS', saltLength: 32 } },
];

export default serveProbes({
  // Inputs past one call's bound (1 MiB) cross as a payload the host takes a piece at a time.
  async carried() {
    const whole = new Uint8Array(3 * 1024 * 1024 + 40);
    for (let i = 0; i < whole.length; i++) whole[i] = (i * 31 + (i >> 10)) & 0xff;
    const view = whole.subarray(17, whole.length - 6);
    const windowDigest = hex(await subtle.digest('SHA-256', view));
    // WebCrypto copies the bytes when the method is called: a change after the call is not hashed.
    const changing = view.slice();
    const pending = subtle.digest('SHA-256', changing);
    changing.fill(0);
    const copiedAtCall = hex(await pending);
    const hmac = await subtle.importKey('raw', enc.encode('key'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    const mac = await subtle.sign('HMAC', hmac, view);
    const verified = await subtle.verify('HMAC', hmac, mac, view);
    const hugeSignature = await subtle.verify('HMAC', hmac, new Uint8Array(2 * 1024 * 1024), view);
    const aes = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const iv = new Uint8Array(12);
    const sealed = await subtle.encrypt({ name: 'AES-GCM', iv }, aes, view);
    const opened = new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv }, aes, sealed));
    let same = opened.length === view.length;
    for (let i = 0; same && i < view.length; i++) same = opened[i] === view[i];
    // Past 256 KiB these run on the crypto threads: a failure keeps WebCrypto's error name there too.
    const tampered = new Uint8Array(sealed);
    tampered[5] ^= 1;
    const refused = await errorOf(() => subtle.decrypt({ name: 'AES-GCM', iv }, aes, tampered));
    const ec = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const ecSignature = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, ec.privateKey, view);
    const ecVerified = await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, ec.publicKey, ecSignature, view);
    const ecOther = await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, ec.publicKey, ecSignature, view.subarray(1));
    return { windowDigest, copiedAtCall, mac: hex(mac), verified, hugeSignature, sealedBytes: sealed.byteLength, roundTrip: same, refused: refused.name, ecVerified, ecOther };
  },

  async digests() {
    const out = {};
    const big = new Uint8Array(5 * 1024 * 1024).fill(0x61);
    for (const alg of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512', 'MD5']) {
      out[alg] = {
        empty: hex(await subtle.digest(alg, new Uint8Array(0))),
        abc: hex(await subtle.digest({ name: alg }, enc.encode('abc'))),
        // A view into a larger buffer: only its bytes count.
        view: hex(await subtle.digest(alg.toLowerCase(), new Uint8Array(enc.encode('xxabcxx').buffer, 2, 3))),
        dataView: hex(await subtle.digest(alg, new DataView(enc.encode('xxabcxx').buffer, 2, 3))),
        big: hex(await subtle.digest(alg, big)),
      };
    }
    return out;
  },

  async hmac() {
    // RFC 4231 test case 2.
    const jefe = await subtle.importKey('raw', enc.encode('Jefe'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    const rfc4231 = hex(await subtle.sign('HMAC', jefe, enc.encode('what do ya want for nothing?')));
    const out = { rfc4231, byHash: {} };
    const keyBytes = new Uint8Array(32).map((_, i) => i);
    for (const hash of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) {
      const key = await subtle.importKey('raw', keyBytes, { name: 'HMAC', hash }, false, ['sign', 'verify']);
      const mac = await subtle.sign({ name: 'HMAC' }, key, enc.encode('message'));
      out.byHash[hash] = {
        mac: hex(mac),
        verifies: await subtle.verify('HMAC', key, mac, enc.encode('message')),
        rejectsTampered: !(await subtle.verify('HMAC', key, mac, enc.encode('messagE'))),
        algorithm: key.algorithm,
      };
    }
    const generated = await subtle.generateKey({ name: 'HMAC', hash: 'SHA-512' }, true, ['sign']);
    out.generated = {
      algorithm: generated.algorithm,
      raw: b64(await subtle.exportKey('raw', generated)),
      mac: b64(await subtle.sign('HMAC', generated, enc.encode('hello'))),
    };
    return out;
  },

  async signatures() {
    const out = {};
    const data = enc.encode('signed by the worker');
    for (const s of SIGNERS) {
      const pair = await subtle.generateKey(s.gen, true, ['sign', 'verify']);
      const signature = await subtle.sign(s.sign, pair.privateKey, data);
      out[s.name] = {
        verifies: await subtle.verify(s.sign, pair.publicKey, signature, data),
        rejectsTampered: !(await subtle.verify(s.sign, pair.publicKey, signature, enc.encode('signed by someone else'))),
        spki: b64(await subtle.exportKey('spki', pair.publicKey)),
        signature: b64(signature),
        publicType: pair.publicKey.type, privateType: pair.privateKey.type,
        publicUsages: pair.publicKey.usages, privateUsages: pair.privateKey.usages,
        algorithm: pair.publicKey.algorithm,
        exponent: pair.publicKey.algorithm.publicExponent instanceof Uint8Array ? [...pair.publicKey.algorithm.publicExponent] : null,
      };
    }
    return out;
  },

  async ciphers() {
    const plaintext = enc.encode('attack at dawn, bring snacks');
    const out = {};
    const iv12 = crypto.getRandomValues(new Uint8Array(12));
    const iv16 = crypto.getRandomValues(new Uint8Array(16));
    const cases = [
      { name: 'AES-GCM', gen: { name: 'AES-GCM', length: 256 }, params: { name: 'AES-GCM', iv: iv12, additionalData: enc.encode('header'), tagLength: 128 } },
      { name: 'AES-CBC', gen: { name: 'AES-CBC', length: 128 }, params: { name: 'AES-CBC', iv: iv16 } },
      { name: 'AES-CTR', gen: { name: 'AES-CTR', length: 192 }, params: { name: 'AES-CTR', counter: iv16, length: 64 } },
    ];
    for (const c of cases) {
      const key = await subtle.generateKey(c.gen, true, ['encrypt', 'decrypt']);
      const ciphertext = await subtle.encrypt(c.params, key, plaintext);
      const decrypted = await subtle.decrypt(c.params, key, ciphertext);
      out[c.name] = {
        roundTrip: new TextDecoder().decode(decrypted),
        jwk: await subtle.exportKey('jwk', key),
        ciphertext: b64(ciphertext),
        algorithm: key.algorithm,
      };
    }
    const rsa = await subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['encrypt', 'decrypt']);
    const oaep = { name: 'RSA-OAEP', label: enc.encode('label') };
    const ciphertext = await subtle.encrypt(oaep, rsa.publicKey, plaintext);
    out['RSA-OAEP'] = {
      roundTrip: new TextDecoder().decode(await subtle.decrypt(oaep, rsa.privateKey, ciphertext)),
      pkcs8: b64(await subtle.exportKey('pkcs8', rsa.privateKey)),
      ciphertext: b64(ciphertext),
    };
    out.params = { iv12: b64(iv12), iv16: b64(iv16) };
    return out;
  },

  // Keys made by the test (Node's WebCrypto) in every format, imported and exported again.
  async importExport(input) {
    const out = {};
    const aes = await subtle.importKey('raw', unb64(input.aesRaw), 'AES-GCM', true, ['encrypt', 'decrypt']);
    out.aes = { raw: b64(await subtle.exportKey('raw', aes)), jwk: await subtle.exportKey('jwk', aes), algorithm: aes.algorithm };
    out.aes.ciphertext = b64(await subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, aes, enc.encode('from the worker')));

    const hmac = await subtle.importKey('jwk', input.hmacJwk, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'verify']);
    out.hmac = { jwk: await subtle.exportKey('jwk', hmac), mac: b64(await subtle.sign('HMAC', hmac, enc.encode('m'))) };

    const ecPrivate = await subtle.importKey('pkcs8', unb64(input.ecPkcs8), { name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign']);
    const ecPublic = await subtle.importKey('spki', unb64(input.ecSpki), { name: 'ECDSA', namedCurve: 'P-384' }, true, ['verify']);
    const ecSignature = await subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, ecPrivate, enc.encode('ec'));
    out.ec = {
      spki: b64(await subtle.exportKey('spki', ecPublic)),
      raw: b64(await subtle.exportKey('raw', ecPublic)),
      privateJwk: await subtle.exportKey('jwk', ecPrivate),
      signature: b64(ecSignature),
      selfVerifies: await subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, ecPublic, ecSignature, enc.encode('ec')),
    };

    const edPublic = await subtle.importKey('raw', unb64(input.edRaw), 'Ed25519', true, ['verify']);
    const edPrivate = await subtle.importKey('pkcs8', unb64(input.edPkcs8), { name: 'Ed25519' }, false, ['sign']);
    out.ed = {
      raw: b64(await subtle.exportKey('raw', edPublic)),
      jwk: await subtle.exportKey('jwk', edPublic),
      signature: b64(await subtle.sign('Ed25519', edPrivate, enc.encode('ed'))),
      privateExtractable: edPrivate.extractable,
    };

    const rsaPrivate = await subtle.importKey('jwk', input.rsaJwk, { name: 'RSA-PSS', hash: 'SHA-256' }, true, ['sign']);
    out.rsa = {
      signature: b64(await subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, rsaPrivate, enc.encode('rsa'))),
      pkcs8: b64(await subtle.exportKey('pkcs8', rsaPrivate)),
      algorithm: { ...rsaPrivate.algorithm, publicExponent: [...rsaPrivate.algorithm.publicExponent] },
    };

    const x = await subtle.importKey('raw', unb64(input.x25519Raw), 'X25519', true, []);
    out.x25519 = { raw: b64(await subtle.exportKey('raw', x)), spki: b64(await subtle.exportKey('spki', x)) };
    return out;
  },

  async wrap() {
    const out = {};
    const inner = await subtle.generateKey({ name: 'AES-GCM', length: 128 }, true, ['encrypt', 'decrypt']);
    const innerRaw = b64(await subtle.exportKey('raw', inner));

    const kw = await subtle.generateKey({ name: 'AES-KW', length: 256 }, true, ['wrapKey', 'unwrapKey']);
    const wrappedKw = await subtle.wrapKey('raw', inner, kw, 'AES-KW');
    const unwrappedKw = await subtle.unwrapKey('raw', wrappedKw, kw, { name: 'AES-KW' }, 'AES-GCM', true, ['decrypt']);
    out.kw = {
      kek: b64(await subtle.exportKey('raw', kw)),
      wrapped: b64(wrappedKw),
      innerRaw,
      unwrappedRaw: b64(await subtle.exportKey('raw', unwrappedKw)),
      unwrappedUsages: unwrappedKw.usages,
    };

    const hmac = await subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'verify']);
    const gcm = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['wrapKey', 'unwrapKey']);
    const iv = new Uint8Array(12).fill(7);
    const wrappedJwk = await subtle.wrapKey('jwk', hmac, gcm, { name: 'AES-GCM', iv });
    const unwrappedHmac = await subtle.unwrapKey('jwk', wrappedJwk, gcm, { name: 'AES-GCM', iv }, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    out.gcmJwk = {
      sameMac: hex(await subtle.sign('HMAC', hmac, enc.encode('x'))) === hex(await subtle.sign('HMAC', unwrappedHmac, enc.encode('x'))),
      unwrappedExtractable: unwrappedHmac.extractable,
    };

    const rsa = await subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-1' }, true, ['wrapKey', 'unwrapKey']);
    const wrappedRsa = await subtle.wrapKey('raw', inner, rsa.publicKey, 'RSA-OAEP');
    const unwrappedRsa = await subtle.unwrapKey('raw', wrappedRsa, rsa.privateKey, 'RSA-OAEP', 'AES-GCM', true, ['encrypt']);
    out.rsa = { same: b64(await subtle.exportKey('raw', unwrappedRsa)) === innerRaw };

    const locked = await subtle.generateKey({ name: 'AES-GCM', length: 128 }, false, ['encrypt']);
    out.nonExtractable = await errorOf(() => subtle.wrapKey('raw', locked, kw, 'AES-KW'));
    out.badWrapped = await errorOf(() => subtle.unwrapKey('raw', new Uint8Array(24), kw, 'AES-KW', 'AES-GCM', true, ['decrypt']));
    return out;
  },

  async derive(input) {
    const out = {};
    const password = await subtle.importKey('raw', enc.encode('password'), 'PBKDF2', false, ['deriveBits', 'deriveKey']);
    // RFC 6070 test vectors 1 and 3.
    out.pbkdf2 = [
      hex(await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-1', salt: enc.encode('salt'), iterations: 1 }, password, 160)),
      hex(await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-1', salt: enc.encode('salt'), iterations: 4096 }, password, 160)),
    ];
    const pbkdf2Params = { name: 'PBKDF2', hash: 'SHA-256', salt: enc.encode('pepper'), iterations: 1000 };
    const derivedAes = await subtle.deriveKey(pbkdf2Params, password, { name: 'AES-GCM', length: 256 }, true, ['encrypt']);
    out.pbkdf2DeriveKey = {
      matchesBits: hex(await subtle.exportKey('raw', derivedAes)) === hex(await subtle.deriveBits(pbkdf2Params, password, 256)),
      algorithm: derivedAes.algorithm,
      usages: derivedAes.usages,
    };
    out.pbkdf2TooMany = await errorOf(() => subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: new Uint8Array(8), iterations: 100001 }, password, 256));
    out.pbkdf2Extractable = await errorOf(() => subtle.importKey('raw', enc.encode('pw'), 'PBKDF2', true, ['deriveBits']));

    // RFC 5869 test case 1.
    const ikm = await subtle.importKey('raw', new Uint8Array(22).fill(0x0b), 'HKDF', false, ['deriveBits', 'deriveKey']);
    const hkdfParams = { name: 'HKDF', hash: 'SHA-256', salt: unhex('000102030405060708090a0b0c'), info: unhex('f0f1f2f3f4f5f6f7f8f9') };
    out.hkdf = hex(await subtle.deriveBits(hkdfParams, ikm, 42 * 8));
    const hkdfHmac = await subtle.deriveKey(hkdfParams, ikm, { name: 'HMAC', hash: 'SHA-256', length: 256 }, true, ['sign']);
    out.hkdfDeriveKey = hex(await subtle.exportKey('raw', hkdfHmac));

    // ECDH and X25519 against the test's key pairs.
    const ecdh = await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits', 'deriveKey']);
    const theirEc = await subtle.importKey('raw', unb64(input.ecdhPublic), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    out.ecdh = {
      shared: b64(await subtle.deriveBits({ name: 'ECDH', public: theirEc }, ecdh.privateKey, 256)),
      public: b64(await subtle.exportKey('raw', ecdh.publicKey)),
      fullLength: (await subtle.deriveBits({ name: 'ECDH', public: theirEc }, ecdh.privateKey, null)).byteLength,
    };
    const ecdhAes = await subtle.deriveKey({ name: 'ECDH', public: theirEc }, ecdh.privateKey, { name: 'AES-GCM', length: 128 }, true, ['encrypt']);
    out.ecdh.derivedKey = b64(await subtle.exportKey('raw', ecdhAes));

    const x = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits', 'deriveKey']);
    const theirX = await subtle.importKey('raw', unb64(input.x25519Public), 'X25519', false, []);
    out.x25519 = {
      shared: b64(await subtle.deriveBits({ name: 'X25519', public: theirX }, x.privateKey, 256)),
      public: b64(await subtle.exportKey('raw', x.publicKey)),
    };
    const xHmac = await subtle.deriveKey({ name: 'X25519', public: theirX }, x.privateKey, { name: 'HMAC', hash: 'SHA-256', length: 256 }, true, ['sign']);
    out.x25519.derivedKey = b64(await subtle.exportKey('raw', xHmac));
    out.publicNotAKey = await errorOf(() => subtle.deriveBits({ name: 'X25519', public: { type: 'public' } }, x.privateKey, 256));
    return out;
  },

  async errors() {
    const out = {};
    const ec = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const verifyOnly = await subtle.importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    const aesGcm = await subtle.generateKey({ name: 'AES-GCM', length: 128 }, false, ['encrypt', 'decrypt']);
    out.signWithPublicKey = await errorOf(() => subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, ec.publicKey, new Uint8Array(1)));
    out.signWithoutUsage = await errorOf(() => subtle.sign('HMAC', verifyOnly, new Uint8Array(1)));
    out.algorithmMismatch = await errorOf(() => subtle.encrypt({ name: 'AES-CBC', iv: new Uint8Array(16) }, aesGcm, new Uint8Array(1)));
    out.exportNonExtractable = await errorOf(() => subtle.exportKey('raw', aesGcm));
    out.usageNotForAlgorithm = await errorOf(() => subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['sign']));
    out.emptyUsages = await errorOf(() => subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, []));
    out.unknownUsage = await errorOf(() => subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'fly']));
    out.unsupportedDigest = await errorOf(() => subtle.digest('SHA-3', new Uint8Array(1)));
    out.unsupportedAlgorithm = await errorOf(() => subtle.generateKey({ name: 'Ed448' }, true, ['sign']));
    out.md5NotForHmac = await errorOf(() => subtle.generateKey({ name: 'HMAC', hash: 'MD5' }, true, ['sign']));
    out.digestWithoutName = await errorOf(() => subtle.digest({}, new Uint8Array(1)));
    out.badAesLength = await errorOf(() => subtle.importKey('raw', new Uint8Array(7), 'AES-GCM', false, ['encrypt']));
    out.badSpki = await errorOf(() => subtle.importKey('spki', new Uint8Array([48, 3, 1, 2, 3]), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']));
    out.jwkKtyMismatch = await errorOf(() => subtle.importKey('jwk', { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']));
    out.jwkNotObject = await errorOf(() => subtle.importKey('jwk', new Uint8Array(4), 'AES-GCM', false, ['encrypt']));
    out.rawNotBuffer = await errorOf(() => subtle.importKey('raw', { k: 'x' }, 'AES-GCM', false, ['encrypt']));
    out.badFormat = await errorOf(() => subtle.exportKey('pem', ec.publicKey));
    const iv = new Uint8Array(12);
    const sealed = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv }, aesGcm, enc.encode('secret')));
    sealed[0] ^= 1;
    out.tamperedCiphertext = await errorOf(() => subtle.decrypt({ name: 'AES-GCM', iv }, aesGcm, sealed));
    out.dataNotBuffer = await errorOf(() => subtle.digest('SHA-256', 'text'));
    out.tooFewArguments = await errorOf(() => subtle.digest('SHA-256'));
    out.rsaTooLarge = await errorOf(() => subtle.generateKey({ name: 'RSA-PSS', modulusLength: 16384, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign']));
    out.rsaOddExponent = await errorOf(() => subtle.generateKey({ name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 3]), hash: 'SHA-256' }, true, ['sign']));
    let thrownSynchronously = false;
    try { subtle.digest('nope', 1).catch(() => {}); } catch { thrownSynchronously = true; }
    out.thrownSynchronously = thrownSynchronously;
    return out;
  },

  timingSafeEqual() {
    const a = enc.encode('same bytes');
    return {
      equal: subtle.timingSafeEqual(a, enc.encode('same bytes')),
      different: subtle.timingSafeEqual(a, enc.encode('same bytez')),
      views: subtle.timingSafeEqual(new Uint8Array(enc.encode('..abc').buffer, 2), new DataView(enc.encode('abc..').buffer, 0, 3)),
      buffers: subtle.timingSafeEqual(new ArrayBuffer(4), new Uint32Array(1).buffer),
      empty: subtle.timingSafeEqual(new Uint8Array(0), new ArrayBuffer(0)),
      lengthMismatch: (() => { try { subtle.timingSafeEqual(a, new Uint8Array(3)); return 'no error'; } catch (e) { return [e.constructor.name, e.message]; } })(),
      notBuffers: (() => { try { subtle.timingSafeEqual('abc', 'abc'); return 'no error'; } catch (e) { return e.constructor.name; } })(),
    };
  },

  async cryptoKey() {
    const key = await subtle.generateKey({ name: 'AES-GCM', length: 128 }, true, ['encrypt']);
    const out = {};
    const attempt = (fn) => { try { fn(); return 'no error'; } catch (e) { return e.name + ': ' + e.message; } };
    out.construct = attempt(() => new CryptoKey());
    out.constructWithArgs = attempt(() => new CryptoKey(Symbol('CryptoKey'), { id: 'x', type: 'secret', extractable: true, algorithm: {}, usages: [] }));
    out.subclass = attempt(() => { class Forged extends CryptoKey {} return new Forged(); });
    out.constructSubtle = attempt(() => new SubtleCrypto());
    out.sameSubtle = crypto.subtle === crypto.subtle && crypto.subtle instanceof SubtleCrypto;
    out.names = [CryptoKey.name, SubtleCrypto.name, Crypto.name];
    out.tag = Object.prototype.toString.call(key);
    out.isKey = key instanceof CryptoKey;
    out.ownKeys = Reflect.ownKeys(key).length;
    out.json = JSON.stringify(key);
    out.fields = [key.type, key.extractable, key.usages, key.algorithm];
    out.algorithmCached = key.algorithm === key.algorithm && key.usages === key.usages;
    out.forgedPrototype = await errorOf(() => subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, Object.create(CryptoKey.prototype), new Uint8Array(1)));
    out.forgedLookalike = await errorOf(() => subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, { type: 'secret', extractable: true, algorithm: key.algorithm, usages: ['encrypt'] }, new Uint8Array(1)));
    out.proxy = await errorOf(() => subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, new Proxy(key, {}), new Uint8Array(1)));
    out.getterOnForged = attempt(() => Object.create(CryptoKey.prototype).type);
    out.clone = attempt(() => structuredClone(key));
    return out;
  },
});
`;

// Keeps a key in module state across requests; /burn ends its isolate.
const KEEPER = PRELUDE + `
let key;
export default serveProbes({
  async make() {
    key = await subtle.importKey('raw', enc.encode('keeper secret'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return { made: true };
  },
  async use() {
    if (!key) return { mac: null };
    return { mac: hex(await subtle.sign('HMAC', key, enc.encode('hello'))) };
  },
  burn() { while (true) {} },
});
`;

// Holds no key of its own and tries every way to make one that would reach another worker's.
const INTRUDER = PRELUDE + `
export default serveProbes({
  async forge() {
    const data = enc.encode('hello');
    const attempts = {};
    attempts.prototype = await errorOf(() => subtle.sign('HMAC', Object.create(CryptoKey.prototype), data));
    attempts.lookalike = await errorOf(() => subtle.sign('HMAC', { type: 'secret', extractable: false, algorithm: { name: 'HMAC', hash: { name: 'SHA-256' } }, usages: ['sign'] }, data));
    attempts.construct = await errorOf(async () => subtle.sign('HMAC', Reflect.construct(CryptoKey, [Symbol('CryptoKey'), { id: 'AAAAAAAAAAAAAAAAAAAAAA', type: 'secret', extractable: false, algorithm: {}, usages: ['sign'] }]), data));
    attempts.setPrototypeOf = await errorOf(() => subtle.sign('HMAC', Object.setPrototypeOf({ id: 1 }, CryptoKey.prototype), data));
    return attempts;
  },
});
`;

// crypto.DigestStream: written to by hand, and as the target of a request body's pipeTo.
const HASHER = PRELUDE + `
export default {
  async fetch(request) {
    if (new URL(request.url).pathname === '/body') {
      const stream = new crypto.DigestStream('SHA-256');
      await request.body.pipeTo(stream);
      return Response.json({ digest: hex(await stream.digest), bytesWritten: stream.bytesWritten });
    }
    if (new URL(request.url).pathname === '/large') {
      // One write of a window on a larger buffer, over three of the host's pieces.
      const whole = new Uint8Array(3 * 1024 * 1024 + 40);
      for (let i = 0; i < whole.length; i++) whole[i] = (i * 31 + (i >> 10)) & 0xff;
      const stream = new crypto.DigestStream('SHA-256');
      const writer = stream.getWriter();
      await writer.write(whole.subarray(17, whole.length - 6));
      await writer.close();
      return Response.json({ digest: hex(await stream.digest), bytesWritten: stream.bytesWritten });
    }
    const out = {};
    for (const alg of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512', 'MD5']) {
      const stream = new crypto.DigestStream(alg === 'SHA-384' ? { name: alg } : alg);
      const writer = stream.getWriter();
      await writer.write(enc.encode('hello '));
      await writer.write(new Uint8Array(enc.encode('xxwor').buffer, 2));
      await writer.write('ld');
      await writer.close();
      out[alg] = hex(await stream.digest);
    }
    const stream = new crypto.DigestStream('SHA-256');
    out.isWritableStream = stream instanceof WritableStream;
    out.tag = Object.prototype.toString.call(stream);
    out.name = crypto.DigestStream.name;
    out.unsupported = await errorOf(() => new crypto.DigestStream('SHA-3'));
    const aborted = new crypto.DigestStream('SHA-256');
    const writer = aborted.getWriter();
    await writer.write(new Uint8Array(1));
    writer.abort(new RangeError('stop'));
    out.aborted = await errorOf(() => aborted.digest);
    const bad = new crypto.DigestStream('MD5');
    out.badChunk = await errorOf(() => bad.getWriter().write(42));
    out.badChunkDigest = await errorOf(() => bad.digest);
    return Response.json(out);
  },
};
`;

let served: Served;
before(async () => {
  served = await serve({
    // Generous CPU: the probes do a lot in one request, and a loaded machine must not fail them.
    probes: moduleWorker(PROBES, { limits: { cpuMs: 5000 } }),
    keeper: moduleWorker(KEEPER),
    intruder: moduleWorker(INTRUDER),
    // Its /large probe fills 3 MiB in a JavaScript loop: generous CPU, as the probes have.
    hasher: moduleWorker(HASHER, { limits: { cpuMs: 5000 } }),
  });
});
after(() => served.close());

async function probe<T = Record<string, any>>(worker: string, name: string, input?: unknown): Promise<T> {
  const response = await served.fetch(worker, `/${name}`, input === undefined ? {} : { method: 'POST', body: JSON.stringify(input) });
  const text = await response.text();
  assert.equal(response.status, 200, `${worker}/${name}: ${text}\n${JSON.stringify(served.logs.filter((l) => l.type === 'exception'))}`);
  return JSON.parse(text) as T;
}

const NODE_HASH: Record<string, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512', MD5: 'md5' };

test('digest: SHA-1/256/384/512 and MD5 match known answers and node:crypto, for buffers, views and 5 MB inputs', async () => {
  const out = await probe('probes', 'digests');
  assert.equal(out['SHA-256'].abc, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(out['SHA-1'].abc, 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(out.MD5.abc, '900150983cd24fb0d6963f7d28e17f72');
  assert.equal(out.MD5.empty, 'd41d8cd98f00b204e9800998ecf8427e');
  const big = Buffer.alloc(5 * 1024 * 1024, 0x61);
  for (const [alg, nodeName] of Object.entries(NODE_HASH)) {
    assert.equal(out[alg].empty, createHash(nodeName).update('').digest('hex'), alg);
    assert.equal(out[alg].abc, createHash(nodeName).update('abc').digest('hex'), alg);
    assert.equal(out[alg].view, out[alg].abc, `${alg} of a view`);
    assert.equal(out[alg].dataView, out[alg].abc, `${alg} of a DataView`);
    assert.equal(out[alg].big, createHash(nodeName).update(big).digest('hex'), `${alg} of 5 MB`);
  }
});

test('inputs over 1 MiB cross as a payload: digest, sign, verify, encrypt and decrypt of a window agree with node:crypto', async () => {
  const whole = Buffer.alloc(3 * 1024 * 1024 + 40);
  for (let i = 0; i < whole.length; i++) whole[i] = (i * 31 + (i >> 10)) & 0xff;
  const view = whole.subarray(17, whole.length - 6);
  const out = await probe('probes', 'carried');
  const digest = createHash('sha256').update(view).digest('hex');
  assert.equal(out.windowDigest, digest);
  assert.equal(out.copiedAtCall, digest);
  assert.equal(out.mac, createHmac('sha256', 'key').update(view).digest('hex'));
  assert.equal(out.verified, true);
  assert.equal(out.hugeSignature, false);
  assert.equal(out.sealedBytes, view.length + 16);
  assert.equal(out.roundTrip, true);
  assert.equal(out.refused, 'OperationError');
  assert.deepEqual([out.ecVerified, out.ecOther], [true, false]);
});

test('host ops: data past one call\'s bound is taken from the call\'s payload, and a payload that does not add up is refused', async () => {
  const pieces = (list: (ArrayBuffer | string | false)[]) => {
    const queue = [...list];
    return { ...opContext(), takePayload: async () => queue.length === 0 ? null : queue.shift()! };
  };
  const length = MAX_CALL_BYTES + 5;
  const bytesOf = Buffer.alloc(length, 7);
  const first = bytesOf.buffer.slice(bytesOf.byteOffset, bytesOf.byteOffset + MAX_CALL_BYTES);
  const rest = bytesOf.buffer.slice(bytesOf.byteOffset + MAX_CALL_BYTES, bytesOf.byteOffset + length);
  const digest = await cryptoAsyncOps['crypto.digest']!(pieces([first, rest]), [{ name: 'SHA-256' }, length]) as ArrayBuffer;
  assert.equal(Buffer.from(digest).toString('hex'), createHash('sha256').update(bytesOf).digest('hex'));
  for (const [list, size] of [[[first], length], [[first, rest, rest], length], [[first, false], length], [[first, 'text'], length]] as const) {
    const error = await rejection(cryptoAsyncOps['crypto.digest']!(pieces([...list]), [{ name: 'SHA-256' }, size]));
    assert.equal(error.name, 'TypeError', error.message);
  }
  // A length is only ever sent past the bound, and never past what a call may carry at all.
  assert.equal((await rejection(cryptoAsyncOps['crypto.digest']!(pieces([]), [{ name: 'SHA-256' }, 10]))).name, 'TypeError');
  assert.equal((await rejection(cryptoAsyncOps['crypto.digest']!(pieces([]), [{ name: 'SHA-256' }, 2 ** 40]))).name, 'RangeError');
});

test('host ops: the data an isolate\'s pending calls hold on the host is bounded by its memory limit', async () => {
  const ctx = opContext();
  const half = (DEFAULT_LIMITS.memoryMb / 2) * 1024 * 1024 + 1;
  // The first call's data is still being taken when the second comes.
  let giveFirst!: (piece: ArrayBuffer | null) => void;
  const first = cryptoAsyncOps['crypto.digest']!({ ...ctx, takePayload: () => new Promise((resolve) => (giveFirst = resolve)) }, [{ name: 'SHA-256' }, half]);
  const second = await rejection(cryptoAsyncOps['crypto.digest']!({ ...ctx, takePayload: async () => null }, [{ name: 'SHA-256' }, half]));
  assert.equal(second.name, 'QuotaExceededError', second.message);
  // Once the first is over, its bytes count no more.
  giveFirst(null);
  assert.equal((await rejection(first)).name, 'TypeError', 'the first call\'s data did not add up');
  const third = await rejection(cryptoAsyncOps['crypto.digest']!({ ...ctx, takePayload: async () => null }, [{ name: 'SHA-256' }, half]));
  assert.equal(third.name, 'TypeError', third.message);
});

test('HMAC: RFC 4231 vector, every hash against node:crypto, verify, generated keys usable on the host', async () => {
  const out = await probe('probes', 'hmac');
  assert.equal(out.rfc4231, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  for (const hash of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) {
    const r = out.byHash[hash];
    assert.equal(r.mac, createHmac(NODE_HASH[hash]!, key).update('message').digest('hex'), hash);
    assert.equal(r.verifies, true);
    assert.equal(r.rejectsTampered, true);
    assert.deepEqual(r.algorithm, { name: 'HMAC', hash: { name: hash }, length: 256 });
  }
  assert.deepEqual(out.generated.algorithm, { name: 'HMAC', hash: { name: 'SHA-512' }, length: 1024 });
  const raw = unb64(out.generated.raw);
  assert.equal(out.generated.mac, createHmac('sha512', raw).update('hello').digest('base64'));
});

test('sign/verify: ECDSA P-256/P-384, Ed25519, RSASSA-PKCS1-v1_5, RSA-PSS round trips, verified again by Node', async () => {
  const out = await probe('probes', 'signatures');
  const data = new TextEncoder().encode('signed by the worker');
  const hostAlgorithms: Record<string, { import: any; verify: any }> = {
    'ECDSA P-256': { import: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' } },
    'ECDSA P-384': { import: { name: 'ECDSA', namedCurve: 'P-384' }, verify: { name: 'ECDSA', hash: 'SHA-384' } },
    Ed25519: { import: { name: 'Ed25519' }, verify: { name: 'Ed25519' } },
    'RSASSA-PKCS1-v1_5': { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, verify: { name: 'RSASSA-PKCS1-v1_5' } },
    'RSA-PSS': { import: { name: 'RSA-PSS', hash: 'SHA-384' }, verify: { name: 'RSA-PSS', saltLength: 32 } },
  };
  for (const [name, algs] of Object.entries(hostAlgorithms)) {
    const r = out[name];
    assert.equal(r.verifies, true, name);
    assert.equal(r.rejectsTampered, true, name);
    assert.deepEqual([r.publicType, r.privateType, r.publicUsages, r.privateUsages], ['public', 'private', ['verify'], ['sign']], name);
    const publicKey = await subtle.importKey('spki', unb64(r.spki), algs.import, true, ['verify']);
    assert.equal(await subtle.verify(algs.verify, publicKey, unb64(r.signature), data), true, `${name} verified by Node`);
  }
  assert.deepEqual(out['RSA-PSS'].algorithm, { name: 'RSA-PSS', modulusLength: 2048, publicExponent: { 0: 1, 1: 0, 2: 1 }, hash: { name: 'SHA-384' } });
  assert.deepEqual(out['RSA-PSS'].exponent, [1, 0, 1]);
  assert.deepEqual(out['ECDSA P-384'].algorithm, { name: 'ECDSA', namedCurve: 'P-384' });
  assert.deepEqual(out.Ed25519.algorithm, { name: 'Ed25519' });
});

test('encrypt/decrypt: AES-GCM, AES-CBC, AES-CTR, RSA-OAEP round trips, decrypted again by Node', async () => {
  const out = await probe('probes', 'ciphers');
  const plaintext = 'attack at dawn, bring snacks';
  const iv12 = unb64(out.params.iv12);
  const iv16 = unb64(out.params.iv16);
  const hostParams: Record<string, any> = {
    'AES-GCM': { name: 'AES-GCM', iv: iv12, additionalData: new TextEncoder().encode('header'), tagLength: 128 },
    'AES-CBC': { name: 'AES-CBC', iv: iv16 },
    'AES-CTR': { name: 'AES-CTR', counter: iv16, length: 64 },
  };
  for (const [name, params] of Object.entries(hostParams)) {
    const r = out[name];
    assert.equal(r.roundTrip, plaintext, name);
    assert.equal(r.jwk.kty, 'oct');
    const key = await subtle.importKey('jwk', r.jwk, name, false, ['decrypt']);
    const decrypted = await subtle.decrypt(params, key, unb64(r.ciphertext));
    assert.equal(Buffer.from(decrypted).toString(), plaintext, `${name} decrypted by Node`);
  }
  assert.deepEqual(out['AES-CTR'].algorithm, { name: 'AES-CTR', length: 192 });
  assert.equal(out['RSA-OAEP'].roundTrip, plaintext);
  const rsa = await subtle.importKey('pkcs8', unb64(out['RSA-OAEP'].pkcs8), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
  const decrypted = await subtle.decrypt({ name: 'RSA-OAEP', label: new TextEncoder().encode('label') }, rsa, unb64(out['RSA-OAEP'].ciphertext));
  assert.equal(Buffer.from(decrypted).toString(), plaintext, 'RSA-OAEP decrypted by Node');
});

test('importKey/exportKey: raw, jwk, spki and pkcs8 keys made by Node work in the worker and come back the same', async () => {
  const aesRaw = webcrypto.getRandomValues(new Uint8Array(16));
  const hmac = await subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'verify']);
  const hmacJwk = await subtle.exportKey('jwk', hmac);
  const ec = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']) as unknown as webcrypto.CryptoKeyPair;
  const ed = await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as unknown as webcrypto.CryptoKeyPair;
  const rsa = await subtle.generateKey({ name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']) as unknown as webcrypto.CryptoKeyPair;
  const x = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']) as unknown as webcrypto.CryptoKeyPair;
  const ecSpki = b64(await subtle.exportKey('spki', ec.publicKey));
  const edRaw = b64(await subtle.exportKey('raw', ed.publicKey));
  const x25519Raw = b64(await subtle.exportKey('raw', x.publicKey));
  const out = await probe('probes', 'importExport', {
    aesRaw: b64(aesRaw),
    hmacJwk,
    ecPkcs8: b64(await subtle.exportKey('pkcs8', ec.privateKey)),
    ecSpki,
    edRaw,
    edPkcs8: b64(await subtle.exportKey('pkcs8', ed.privateKey)),
    rsaJwk: await subtle.exportKey('jwk', rsa.privateKey),
    x25519Raw,
  });

  assert.equal(out.aes.raw, b64(aesRaw));
  assert.equal(out.aes.jwk.k, Buffer.from(aesRaw).toString('base64url'));
  assert.deepEqual([out.aes.jwk.kty, out.aes.jwk.alg, out.aes.jwk.ext], ['oct', 'A128GCM', true]);
  assert.deepEqual(out.aes.algorithm, { name: 'AES-GCM', length: 128 });
  const aesKey = await subtle.importKey('raw', aesRaw, 'AES-GCM', false, ['decrypt']);
  const opened = await subtle.decrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, aesKey, unb64(out.aes.ciphertext));
  assert.equal(Buffer.from(opened).toString(), 'from the worker');

  assert.equal(out.hmac.jwk.k, hmacJwk.k);
  assert.equal(out.hmac.jwk.alg, 'HS256');
  assert.equal(await subtle.verify('HMAC', hmac, unb64(out.hmac.mac), new TextEncoder().encode('m')), true);

  assert.equal(out.ec.spki, ecSpki);
  assert.equal(unb64(out.ec.raw).length, 97, 'uncompressed P-384 point');
  assert.equal(out.ec.privateJwk.crv, 'P-384');
  assert.equal(typeof out.ec.privateJwk.d, 'string');
  assert.equal(out.ec.selfVerifies, true);
  assert.equal(await subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, ec.publicKey, unb64(out.ec.signature), new TextEncoder().encode('ec')), true);

  assert.equal(out.ed.raw, edRaw);
  assert.deepEqual([out.ed.jwk.kty, out.ed.jwk.crv], ['OKP', 'Ed25519']);
  assert.equal(out.ed.privateExtractable, false);
  assert.equal(await subtle.verify('Ed25519', ed.publicKey, unb64(out.ed.signature), new TextEncoder().encode('ed')), true);

  assert.equal(await subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, rsa.publicKey, unb64(out.rsa.signature), new TextEncoder().encode('rsa')), true);
  assert.deepEqual(out.rsa.algorithm, { name: 'RSA-PSS', modulusLength: 2048, publicExponent: [1, 0, 1], hash: { name: 'SHA-256' } });
  const reimported = await subtle.importKey('pkcs8', unb64(out.rsa.pkcs8), { name: 'RSA-PSS', hash: 'SHA-256' }, true, ['sign']);
  assert.deepEqual(await subtle.exportKey('jwk', reimported).then((j) => j.n), (await subtle.exportKey('jwk', rsa.privateKey)).n);

  assert.equal(out.x25519.raw, x25519Raw);
  assert.deepEqual(unb64(out.x25519.spki), new Uint8Array(await subtle.exportKey('spki', x.publicKey)));
});

test('wrapKey/unwrapKey: AES-KW (checked by Node), AES-GCM with jwk, RSA-OAEP; non-extractable keys stay wrapped', async () => {
  const out = await probe('probes', 'wrap');
  assert.equal(out.kw.unwrappedRaw, out.kw.innerRaw);
  assert.deepEqual(out.kw.unwrappedUsages, ['decrypt']);
  assert.equal(unb64(out.kw.wrapped).length, 24);
  const kek = await subtle.importKey('raw', unb64(out.kw.kek), 'AES-KW', false, ['unwrapKey']);
  const byNode = await subtle.unwrapKey('raw', unb64(out.kw.wrapped), kek, 'AES-KW', 'AES-GCM', true, ['encrypt']);
  assert.equal(b64(await subtle.exportKey('raw', byNode)), out.kw.innerRaw, 'Node unwraps what the worker wrapped');
  assert.deepEqual(out.gcmJwk, { sameMac: true, unwrappedExtractable: false });
  assert.deepEqual(out.rsa, { same: true });
  assert.equal(out.nonExtractable.name, 'InvalidAccessError');
  assert.equal(out.nonExtractable.dom, true);
  assert.equal(out.badWrapped.name, 'OperationError');
});

test('deriveBits/deriveKey: PBKDF2 (RFC 6070), HKDF (RFC 5869), ECDH and X25519 agree with Node', async () => {
  const ecdh = await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']) as unknown as webcrypto.CryptoKeyPair;
  const x = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']) as unknown as webcrypto.CryptoKeyPair;
  const out = await probe('probes', 'derive', {
    ecdhPublic: b64(await subtle.exportKey('raw', ecdh.publicKey)),
    x25519Public: b64(await subtle.exportKey('raw', x.publicKey)),
  });
  assert.deepEqual(out.pbkdf2, ['0c60c80f961f0e71f3a9b524af6012062fe037a6', '4b007901b765489abead49d926f721d065a429c1']);
  assert.deepEqual(out.pbkdf2DeriveKey, { matchesBits: true, algorithm: { name: 'AES-GCM', length: 256 }, usages: ['encrypt'] });
  assert.equal(out.pbkdf2TooMany.name, 'NotSupportedError');
  assert.match(out.pbkdf2TooMany.message, /iteration counts above 100000 are not supported/);
  assert.equal(out.pbkdf2Extractable.name, 'SyntaxError');
  assert.equal(out.pbkdf2Extractable.dom, true);
  assert.equal(out.hkdf, '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  assert.equal(out.hkdfDeriveKey, out.hkdf.slice(0, 64));

  const theirEc = await subtle.importKey('raw', unb64(out.ecdh.public), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
  const ecShared = await subtle.deriveBits({ name: 'ECDH', public: theirEc }, ecdh.privateKey, 256);
  assert.equal(out.ecdh.shared, b64(ecShared));
  assert.equal(out.ecdh.fullLength, 32);
  assert.equal(out.ecdh.derivedKey, b64(ecShared.slice(0, 16)));

  const theirX = await subtle.importKey('raw', unb64(out.x25519.public), 'X25519', false, []);
  const xShared = await subtle.deriveBits({ name: 'X25519', public: theirX }, x.privateKey, 256);
  assert.equal(out.x25519.shared, b64(xShared));
  assert.equal(out.x25519.derivedKey, b64(xShared));
  assert.equal(out.publicNotAKey.name, 'TypeError');
});

test('errors arrive with WebCrypto names and types, as rejections, and say nothing about the host', async () => {
  const out = await probe('probes', 'errors');
  const expected: Record<string, [name: string, dom: boolean]> = {
    signWithPublicKey: ['InvalidAccessError', true],
    signWithoutUsage: ['InvalidAccessError', true],
    algorithmMismatch: ['InvalidAccessError', true],
    exportNonExtractable: ['InvalidAccessError', true],
    usageNotForAlgorithm: ['SyntaxError', true],
    emptyUsages: ['SyntaxError', true],
    unknownUsage: ['SyntaxError', true],
    unsupportedDigest: ['NotSupportedError', true],
    unsupportedAlgorithm: ['NotSupportedError', true],
    md5NotForHmac: ['NotSupportedError', true],
    digestWithoutName: ['TypeError', false],
    badAesLength: ['DataError', true],
    badSpki: ['DataError', true],
    jwkKtyMismatch: ['DataError', true],
    jwkNotObject: ['TypeError', false],
    rawNotBuffer: ['TypeError', false],
    badFormat: ['NotSupportedError', true],
    tamperedCiphertext: ['OperationError', true],
    dataNotBuffer: ['TypeError', false],
    tooFewArguments: ['TypeError', false],
    rsaTooLarge: ['OperationError', true],
    rsaOddExponent: ['OperationError', true],
  };
  for (const [probeName, [name, dom]] of Object.entries(expected)) {
    const error = out[probeName];
    assert.notEqual(error, 'no error', probeName);
    assert.equal(error.name, name, `${probeName}: ${JSON.stringify(error)}`);
    assert.equal(error.dom, dom, `${probeName} is ${dom ? '' : 'not '}a DOMException`);
    if (name === 'TypeError') assert.equal(error.typeError, true, probeName);
    assert.doesNotMatch(error.message, /\/work|node:|ERR_|at async|internal\//, `${probeName} message: ${error.message}`);
  }
  assert.equal(out.unknownUsage.message, 'Attempt to generate AES-GCM key with invalid usage "fly".', 'as workerd says it');
  assert.equal(out.thrownSynchronously, false, 'bad arguments reject, they do not throw');
});

test('timingSafeEqual compares any BufferSources synchronously and refuses different lengths with a TypeError', async () => {
  const out = await probe('probes', 'timingSafeEqual');
  assert.deepEqual(out, {
    equal: true,
    different: false,
    views: true,
    buffers: true,
    empty: true,
    lengthMismatch: ['TypeError', 'Input buffers must have the same byte length.'],
    notBuffers: 'TypeError',
  });
});

test('CryptoKey is an opaque handle: not constructible, no readable id, forged handles are rejected', async () => {
  const out = await probe('probes', 'cryptoKey');
  assert.equal(out.construct, 'TypeError: Illegal constructor');
  assert.equal(out.constructWithArgs, 'TypeError: Illegal constructor');
  assert.equal(out.subclass, 'TypeError: Illegal constructor');
  assert.equal(out.constructSubtle, 'TypeError: Illegal constructor');
  assert.equal(out.sameSubtle, true);
  assert.deepEqual(out.names, ['CryptoKey', 'SubtleCrypto', 'Crypto']);
  assert.equal(out.tag, '[object CryptoKey]');
  assert.equal(out.isKey, true);
  assert.equal(out.ownKeys, 0);
  assert.equal(out.json, '{}');
  assert.deepEqual(out.fields, ['secret', true, ['encrypt'], { name: 'AES-GCM', length: 128 }]);
  assert.equal(out.algorithmCached, true);
  for (const forged of ['forgedPrototype', 'forgedLookalike', 'proxy']) {
    assert.equal(out[forged].name, 'TypeError', forged);
  }
  assert.match(out.getterOnForged, /^TypeError/);
  assert.match(out.clone, /^DataCloneError/);
});

test("a worker cannot forge a handle to another worker's key; keys live and die with their isolate", async () => {
  await probe('keeper', 'make');
  const first = await probe('keeper', 'use');
  assert.equal(first.mac, createHmac('sha256', 'keeper secret').update('hello').digest('hex'), 'the key works across requests');

  const attempts = await probe('intruder', 'forge');
  for (const [how, error] of Object.entries(attempts)) {
    assert.equal((error as { name: string }).name, 'TypeError', `${how}: ${JSON.stringify(error)}`);
  }

  // The keeper's isolate is terminated (CPU limit): its keys go with it.
  const burned = await served.fetch('keeper', '/burn');
  assert.equal(burned.status, 503);
  await burned.text();
  assert.deepEqual(await probe('keeper', 'use'), { mac: null });
});

test('crypto.DigestStream hashes what is written to it, chunk by chunk on the host', async () => {
  const response = await served.fetch('hasher', '/');
  const out = await response.json() as Record<string, any>;
  assert.equal(response.status, 200, JSON.stringify(out));
  for (const [alg, nodeName] of Object.entries(NODE_HASH)) {
    assert.equal(out[alg], createHash(nodeName).update('hello world').digest('hex'), alg);
  }
  assert.equal(out.isWritableStream, true);
  assert.equal(out.tag, '[object DigestStream]');
  assert.equal(out.name, 'DigestStream');
  assert.deepEqual([out.unsupported.name, out.unsupported.dom], ['NotSupportedError', true]);
  assert.deepEqual([out.aborted.name, out.aborted.message], ['RangeError', 'stop']);
  assert.equal(out.badChunk.name, 'TypeError');
  assert.equal(out.badChunkDigest.name, 'TypeError');
});

// The host hashes on its main thread, which every tenant shares: one write of many MiB crosses
// in pieces the host's event loop runs between, and the host refuses a piece past the bound.
test('crypto.DigestStream takes a write of many MiB in pieces, and the host refuses a piece over MAX_CALL_BYTES', async () => {
  const whole = Buffer.alloc(3 * 1024 * 1024 + 40);
  for (let i = 0; i < whole.length; i++) whole[i] = (i * 31 + (i >> 10)) & 0xff;
  const written = whole.subarray(17, whole.length - 6);
  const response = await served.fetch('hasher', '/large');
  const out = await response.json() as Record<string, any>;
  assert.equal(response.status, 200, JSON.stringify(out));
  assert.deepEqual(out, { digest: createHash('sha256').update(written).digest('hex'), bytesWritten: written.length });

  const ctx = opContext();
  const id = cryptoSyncOps['crypto.digestStream.open']!(ctx, ['SHA-256', []]);
  cryptoSyncOps['crypto.digestStream.write']!(ctx, [id, new ArrayBuffer(MAX_CALL_BYTES)]);
  assert.throws(() => cryptoSyncOps['crypto.digestStream.write']!(ctx, [id, new ArrayBuffer(MAX_CALL_BYTES + 1)]), { name: 'RangeError' });
});

test('crypto.DigestStream as the target of a streamed request body', async () => {
  const body = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 10)) & 0xff;
  const response = await served.fetch('hasher', '/body', { method: 'POST', body });
  const out = await response.json() as Record<string, any>;
  assert.equal(response.status, 200, JSON.stringify(out));
  assert.deepEqual(out, { digest: createHash('sha256').update(body).digest('hex'), bytesWritten: body.length });
});

// The host half holds against a caller that took over its sandbox runtime: ids are only looked
// up in the calling isolate's own scope.
function opContext(): OpContext {
  return { worker: 'w', account: 'w', limits: DEFAULT_LIMITS, request: undefined, requestById: () => undefined, scope: new Map(), chargeCpu: () => {}, takePayload: async () => null };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected a rejection');
}

test('host ops: a key id means nothing in another isolate, after release, or when guessed', async () => {
  const a = opContext();
  const b = opContext();
  const raw = new TextEncoder().encode('secret').buffer;
  const info = (await cryptoAsyncOps['crypto.importKey']!(a, ['raw', raw, { name: 'HMAC', hash: { name: 'SHA-256' } }, false, ['sign']])) as { id: string };
  assert.match(info.id, /^[A-Za-z0-9_-]{22}$/, 'ids are 128 random bits');
  const data = new Uint8Array([1, 2, 3]).buffer;
  const mac = await cryptoAsyncOps['crypto.sign']!(a, [{ name: 'HMAC' }, info.id, data]);
  assert.ok(mac instanceof ArrayBuffer);

  const fromB = await rejection(cryptoAsyncOps['crypto.sign']!(b, [{ name: 'HMAC' }, info.id, data]));
  assert.equal(fromB.name, 'InvalidAccessError');
  const guessed = await rejection(cryptoAsyncOps['crypto.sign']!(a, [{ name: 'HMAC' }, 'AAAAAAAAAAAAAAAAAAAAAA', data]));
  assert.equal(guessed.name, 'InvalidAccessError');
  const notAString = await rejection(cryptoAsyncOps['crypto.exportKey']!(a, ['raw', { id: info.id }]));
  assert.equal(notAString.name, 'InvalidAccessError');

  // Non-extractable holds on the host even when the caller knows the id.
  const exported = await rejection(cryptoAsyncOps['crypto.exportKey']!(a, ['raw', info.id]));
  assert.equal(exported.name, 'InvalidAccessError');

  cryptoSyncOps['crypto.releaseKeys']!(a, [[info.id]]);
  const released = await rejection(cryptoAsyncOps['crypto.sign']!(a, [{ name: 'HMAC' }, info.id, data]));
  assert.equal(released.name, 'InvalidAccessError');
});

test('host ops: hostile arguments are refused with clean errors', async () => {
  const ctx = opContext();
  const cases: [keyof typeof cryptoAsyncOps, unknown[], string][] = [
    ['crypto.digest', [{ name: 'SHA-256' }, 'not a buffer'], 'TypeError'],
    ['crypto.digest', [{ name: 'SHA-256' }, new Uint8Array(4)], 'TypeError'],
    ['crypto.digest', [{ name: 42 }, new ArrayBuffer(1)], 'TypeError'],
    ['crypto.digest', [{ name: 'x'.repeat(10_000) }, new ArrayBuffer(1)], 'TypeError'],
    ['crypto.digest', [{ name: 'HMAC' }, new ArrayBuffer(1)], 'NotSupportedError'],
    ['crypto.generateKey', [{ name: 'AES-GCM', length: '256' }, true, ['encrypt']], 'TypeError'],
    ['crypto.generateKey', [{ name: 'AES-GCM', length: 256 }, 'yes', ['encrypt']], 'TypeError'],
    ['crypto.generateKey', [{ name: 'AES-GCM', length: 256 }, true, 'encrypt'], 'TypeError'],
    ['crypto.generateKey', [{ name: 'AES-GCM', length: 256 }, true, Array(100).fill('encrypt')], 'TypeError'],
    ['crypto.importKey', ['pem', new ArrayBuffer(16), 'AES-GCM', true, ['encrypt']], 'NotSupportedError'],
    ['crypto.importKey', ['jwk', { kty: 'oct', k: 7 }, 'AES-GCM', true, ['encrypt']], 'TypeError'],
    ['crypto.deriveBits', [{ name: 'ECDH', public: 'nope' }, 'nope', 256], 'InvalidAccessError'],
    ['crypto.deriveBits', [{ name: 'HKDF' }, 'nope', -1], 'InvalidAccessError'],
  ];
  for (const [op, args, name] of cases) {
    const error = await rejection(cryptoAsyncOps[op]!(ctx, args));
    assert.equal(error.name, name, `${op}(${JSON.stringify(args).slice(0, 80)}): ${error.message}`);
    assert.ok(error.message.length < 300, 'messages stay short');
  }
});

test(`host ops: an isolate holds at most ${MAX_KEYS_PER_ISOLATE} keys, and released keys make room`, async () => {
  const ctx = opContext();
  const raw = new Uint8Array(16).buffer;
  const ids: string[] = [];
  for (let i = 0; i < MAX_KEYS_PER_ISOLATE; i++) {
    const info = (await cryptoAsyncOps['crypto.importKey']!(ctx, ['raw', raw, 'AES-GCM', false, ['encrypt']])) as { id: string };
    ids.push(info.id);
  }
  const over = await rejection(cryptoAsyncOps['crypto.importKey']!(ctx, ['raw', raw, 'AES-GCM', false, ['encrypt']]));
  assert.equal(over.name, 'QuotaExceededError');
  assert.match(over.message, /10000/);
  const pair = await rejection(cryptoAsyncOps['crypto.generateKey']!(ctx, [{ name: 'Ed25519' }, false, ['sign', 'verify']]));
  assert.equal(pair.name, 'QuotaExceededError');
  cryptoSyncOps['crypto.releaseKeys']!(ctx, [ids.slice(0, 2)]);
  await cryptoAsyncOps['crypto.generateKey']!(ctx, [{ name: 'Ed25519' }, false, ['sign', 'verify']]);
});

test('host ops: DigestStream hashes are per isolate and bounded', () => {
  const a = opContext();
  const b = opContext();
  const open = cryptoSyncOps['crypto.digestStream.open']!;
  const write = cryptoSyncOps['crypto.digestStream.write']!;
  const close = cryptoSyncOps['crypto.digestStream.close']!;
  const id = open(a, ['SHA-256', []]) as string;
  write(a, [id, new TextEncoder().encode('abc').buffer]);
  assert.throws(() => write(b, [id, new ArrayBuffer(1)]), { name: 'InvalidStateError' });
  assert.throws(() => write(a, [id, 'abc']), TypeError);
  assert.equal(hex(close(a, [id]) as ArrayBuffer), createHash('sha256').update('abc').digest('hex'));
  assert.throws(() => close(a, [id]), { name: 'InvalidStateError' });
  assert.throws(() => open(a, ['HMAC', []]), { name: 'NotSupportedError' });

  const ids: string[] = [];
  for (let i = 0; i < MAX_DIGEST_STREAMS_PER_ISOLATE; i++) ids.push(open(a, ['MD5', []]) as string);
  assert.throws(() => open(a, ['MD5', []]), RangeError);
  // Streams the sandbox reports garbage collected make room again.
  open(a, ['MD5', ids.slice(0, 1)]);
});
