// The part of env.ASSETS in every isolate's snapshot: the loader of its sandbox module
// (./sandbox/module.ts), which the binding core (src/api/bindings/sandbox.ts) calls for the
// first assets binding an isolate's worker has.

import { createModule } from '../../sandbox/host-calls.ts';
import { Request, requestForFetch } from '../request/sandbox.ts';
import { Response } from '../response/sandbox.ts';
import { headerList } from '../headers/sandbox.ts';
import type { AssetsDeps, AssetsMaker } from './sandbox/module.ts';

export function assetsMaker(): AssetsMaker {
  return createModule<AssetsDeps, AssetsMaker>('assets', { Request, Response, requestForFetch, headerList });
}
