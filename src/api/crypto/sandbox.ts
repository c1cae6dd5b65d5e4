// The `crypto`, Crypto, SubtleCrypto and CryptoKey globals, made on first access: WebCrypto is
// a sandbox module (./sandbox/module.ts), since a hello-world worker never touches it and every
// byte of code in the snapshot is heap in every idle isolate.

import { limitedHostCalls, createModule } from '../../sandbox/host.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import { DOMException } from '../events/sandbox.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import { streams } from '../streams/sandbox.ts';
import { utf8Encode } from '../encoding/sandbox.ts';
import type { CryptoApi, CryptoDeps } from './sandbox/module.ts';

let api: CryptoApi | undefined;

function cryptoApi(): CryptoApi {
  if (api !== undefined) return api;
  // Evaluated on first use, after tenant code may have run: only crypto's own host operations.
  const calls = limitedHostCalls({
    __proto__: null, 'crypto.digest': 1, 'crypto.generateKey': 1, 'crypto.importKey': 1, 'crypto.exportKey': 1,
    'crypto.sign': 1, 'crypto.verify': 1, 'crypto.encrypt': 1, 'crypto.decrypt': 1, 'crypto.deriveBits': 1,
    'crypto.deriveKey': 1, 'crypto.wrapKey': 1, 'crypto.unwrapKey': 1, 'crypto.releaseKeys': 1,
    'crypto.digestStream.open': 1, 'crypto.digestStream.write': 1, 'crypto.digestStream.close': 1,
    'crypto.digestStream.abort': 1, 'crypto.randomBytes': 1,
  } as unknown as Record<string, 1 | undefined>, 'Not a crypto operation.');
  api = createModule<CryptoDeps, CryptoApi>('crypto', {
    callSync: calls.callSync,
    callAsync: calls.callAsync,
    DOMException,
    utf8Encode,
    WritableStream: () => streams().classes.WritableStream as unknown as ReturnType<CryptoDeps['WritableStream']>,
    markNotSerializable,
    requireRequestContext,
  });
  return api;
}

/** Globals made on first access (see main.ts): they load the module. */
export function cryptoGlobals(): Record<string, (name: string) => unknown> {
  const make = (name: string): unknown => cryptoApi()[name as 'crypto' | 'Crypto' | 'SubtleCrypto' | 'CryptoKey'];
  return { crypto: make, Crypto: make, SubtleCrypto: make, CryptoKey: make };
}
