// The `crypto`, Crypto, SubtleCrypto and CryptoKey globals, made on first access: WebCrypto is
// a sandbox module (./sandbox/module.ts), since a hello-world worker never touches it and every
// byte of code in the snapshot is heap in every idle isolate.

import { limitedHostCalls, createModule } from '../../sandbox/host-calls.ts';
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
  const calls = limitedHostCalls('crypto');
  api = createModule<CryptoDeps, CryptoApi>('crypto', {
    callSync: calls.callSync,
    callAsync: calls.callAsync,
    callAsyncCarrying: calls.callAsyncCarrying,
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
