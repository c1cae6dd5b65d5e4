// How a deployment's assets reach the store (docs/ADMIN_API.md, "Static assets"): the client
// asks which of its files' hashes the account lacks, uploads those in batches, then deploys a
// version whose manifest names them. Each blob's hash is computed here from its bytes, so an
// account can store nothing under a hash that is not its content's; and blobs are the
// account's own, so naming another account's hash finds nothing.

import { createHash } from 'node:crypto';
import { isAssetHash, MAX_ASSET_BYTES, MAX_ASSET_FILES } from '../../assets/manifest.ts';
import type { Store, WorkerContent } from '../../store/store.ts';
import { ApiError } from '../api-error.ts';

/** Largest body of `POST /v1/assets/upload`: one 25 MiB file in base64, with room for its JSON. */
export const MAX_UPLOAD_BODY = Math.ceil((MAX_ASSET_BYTES * 4) / 3) + 1024 * 1024;
/** Largest body of `POST /v1/assets/missing`: 20,000 hashes. */
export const MAX_MISSING_BODY = 4 * 1024 * 1024;

/** `POST /v1/assets/missing` `{"hashes": [...]}`: those the account does not hold, in the order given. */
export async function missingAssets(store: Store, accountId: string, body: unknown): Promise<{ missing: string[] }> {
  const hashes = (body as { hashes?: unknown } | undefined)?.hashes;
  if (!Array.isArray(hashes) || hashes.length > MAX_ASSET_FILES || !hashes.every(isAssetHash)) {
    throw new ApiError('invalid', `The body is {"hashes": [...]}: at most ${MAX_ASSET_FILES} SHA-256 hashes of files, each 64 lowercase hex digits.`);
  }
  const unique = [...new Set(hashes)];
  const held = await store.assetSizes(accountId, unique);
  return { missing: unique.filter((hash) => !held.has(hash)) };
}

/**
 * `POST /v1/assets/upload` `{"files": [{"hash", "base64"}]}`: stores each file for the account
 * in one transaction. A hash that is not the SHA-256 of its bytes refuses the whole batch.
 */
export async function uploadAssets(store: Store, accountId: string, body: unknown): Promise<{ stored: number }> {
  const files = (body as { files?: unknown } | undefined)?.files;
  const shape = `The body is {"files": [{"hash": "<SHA-256 of the bytes, 64 hex digits>", "base64": "<the bytes>"}, ...]}, at most ${MAX_ASSET_FILES} files.`;
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !Array.isArray(files) || files.length > MAX_ASSET_FILES) {
    throw new ApiError('invalid', shape);
  }
  const blobs: { hash: string; bytes: Uint8Array }[] = [];
  for (const [index, file] of (files as unknown[]).entries()) {
    const { hash, base64 } = (file ?? {}) as Record<string, unknown>;
    if (!isAssetHash(hash) || typeof base64 !== 'string') throw new ApiError('invalid', `files[${index}]: ${shape}`);
    const bytes = Buffer.from(base64, 'base64');
    if (bytes.byteLength > MAX_ASSET_BYTES) throw new ApiError('too_large', `files[${index}] is ${bytes.byteLength} bytes, over the limit of ${MAX_ASSET_BYTES} (25 MiB) per asset.`);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== hash) {
      throw new ApiError('invalid', `files[${index}]: its bytes hash to ${actual}, not ${hash}. Nothing was stored: send each file with the SHA-256 of its bytes.`);
    }
    blobs.push({ hash, bytes });
  }
  if (blobs.length > 0) await store.putAssets(accountId, blobs);
  return { stored: blobs.length };
}

/**
 * At deploy: an assets binding needs assets to serve, and every file of the manifest must be a
 * blob the account holds, of the size the manifest says.
 */
export async function checkAssetsDeployment(store: Store, accountId: string, content: WorkerContent): Promise<void> {
  const assets = content.assets;
  const binding = Object.entries(content.bindings ?? {}).find(([, spec]) => spec.type === 'assets');
  if (binding !== undefined && assets === undefined) {
    throw new ApiError('invalid', `The binding ${binding[0]} is of type assets, but the deployment has no \`assets\`: add them ([assets] directory in wrangler.toml), or remove the binding.`);
  }
  if (assets === undefined) return;
  const files = Object.entries(assets.manifest);
  const held = await store.assetSizes(accountId, [...new Set(files.map(([, file]) => file.hash))]);
  const missing = files.filter(([, file]) => held.get(file.hash) !== file.size).map(([path]) => path);
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, and ${missing.length - 5} more` : '');
    throw new ApiError(
      'invalid',
      `${missing.length} asset${missing.length === 1 ? '' : 's'} of the manifest ${missing.length === 1 ? 'is' : 'are'} not uploaded to this account (${shown}): upload them first (POST /v1/assets/upload; isolet deploy does it).`,
    );
  }
}

/**
 * The code of a version that has only assets. The asset server answers every request of such
 * a worker itself (a 404 or 405 when no file matches), so this never runs; it lets the rest of
 * the platform treat the worker like any other.
 */
export const ASSETS_ONLY_SCRIPT = "addEventListener('fetch', (event) => event.respondWith(new Response(null, { status: 404 })));\n";
