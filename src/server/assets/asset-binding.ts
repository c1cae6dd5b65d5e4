// env.ASSETS on `isolet serve`: the control process answers the binding's calls from the
// calling worker's own assets (the version it serves), by the rules a client's request gets.
// The worker is the one the binding path resolved the call to (src/server/binding-handlers.ts),
// never one the call names. Each server's AssetServer is found by its store, so servers in one
// process (tests, embedders) each answer for their own workers.

import { assetAnswer, assetRequestOf } from '../../assets/binding.ts';
import { BindingError } from '../../runtime/types.ts';
import type { Store } from '../../store/store.ts';
import { registerBindingHandler } from '../binding-handlers.ts';
import type { AssetServer } from './asset-server.ts';

const servers = new WeakMap<Store, AssetServer>();

/** The assets binding of the server over `store` answers from `assets`. */
export function serveAssetsBinding(store: Store, assets: AssetServer): void {
  servers.set(store, assets);
}

registerBindingHandler('assets', {
  async call(call, context) {
    const assets = servers.get(context.store);
    if (assets === undefined) throw new BindingError('Error', `env.${call.name}: this server does not serve assets.`);
    return assetAnswer(await assets.fetchFromBinding(call.worker, assetRequestOf(call)));
  },
});
