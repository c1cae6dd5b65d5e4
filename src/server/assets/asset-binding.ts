// env.ASSETS on `isolet serve`: the control process answers the binding's calls from the
// calling worker's own assets (the version it serves), by the rules a client's request gets.
// The worker is the one the call was resolved to by the binding path, never one the call names.

import { assetAnswer, assetRequestOf } from '../../assets/binding.ts';
import type { BindingAnswer, BindingCall } from '../../runtime/types.ts';
import type { AssetServer } from './asset-server.ts';

export function assetsBindingHandler(assets: AssetServer): (call: BindingCall) => Promise<BindingAnswer> {
  return async (call) => assetAnswer(await assets.fetchFromBinding(call.worker, assetRequestOf(call)));
}
