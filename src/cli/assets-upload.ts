// `isolet deploy`'s half of static assets: hash every file of the directory, ask the server
// which hashes the account lacks, and upload only those, in batches, saying how far it is.
// What is unchanged since the last deploy (of any worker of the account) is not sent again.

import { readFile } from 'node:fs/promises';
import type { AssetFile } from '../assets/manifest.ts';
import { readAssetsDirectory, type LocalAsset } from '../assets/directory.ts';
import type { AdminClient } from './api-client.ts';

/** A batch's bytes before base64: small enough that the server holds a few at once. */
const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_FILES = 1000;
/** Uploads over this many bytes or files show their progress. */
const PROGRESS_BYTES = 4 * 1024 * 1024;
const PROGRESS_FILES = 200;

export interface AssetsUpload {
  manifest: Record<string, AssetFile>;
  files: number;
  bytes: number;
  /** Files whose bytes were sent (the rest the account held already). */
  uploaded: number;
  uploadedBytes: number;
  /** `_headers` / `_redirects` found in the directory, which isolet does not apply. */
  unsupported: string[];
}

/** Hashes the directory into a manifest; with a client, uploads what the account lacks. */
export async function prepareAssets(dir: string, options: { client?: AdminClient; account?: string; progress: (line: string, done: boolean) => void }): Promise<AssetsUpload> {
  const { files, unsupported } = await readAssetsDirectory(dir);
  const manifest: Record<string, AssetFile> = {};
  for (const file of files) manifest[file.path] = { hash: file.hash, size: file.size, contentType: file.contentType };
  const bytes = files.reduce((sum, file) => sum + file.size, 0);
  const result: AssetsUpload = { manifest, files: files.length, bytes, uploaded: 0, uploadedBytes: 0, unsupported };
  if (options.client === undefined || files.length === 0) return result;

  const missing = new Set(await options.client.missingAssets([...new Set(files.map((file) => file.hash))], options.account));
  // One file per hash: identical files are stored once.
  const toSend: LocalAsset[] = [];
  for (const file of files) {
    if (missing.delete(file.hash)) toSend.push(file);
  }
  const total = toSend.reduce((sum, file) => sum + file.size, 0);
  const show = total > PROGRESS_BYTES || toSend.length > PROGRESS_FILES;
  for (const batch of batches(toSend)) {
    const payload = await Promise.all(batch.map(async (file) => ({ hash: file.hash, base64: (await readFile(file.file)).toString('base64') })));
    await options.client.uploadAssets(payload, options.account);
    result.uploaded += batch.length;
    result.uploadedBytes += batch.reduce((sum, file) => sum + file.size, 0);
    if (show) {
      options.progress(`uploading assets: ${result.uploaded}/${toSend.length} files, ${mib(result.uploadedBytes)}/${mib(total)} MiB`, result.uploaded === toSend.length);
    }
  }
  return result;
}

function* batches(files: LocalAsset[]): Generator<LocalAsset[]> {
  let batch: LocalAsset[] = [];
  let size = 0;
  for (const file of files) {
    if (batch.length > 0 && (size + file.size > BATCH_BYTES || batch.length >= BATCH_FILES)) {
      yield batch;
      batch = [];
      size = 0;
    }
    batch.push(file);
    size += file.size;
  }
  if (batch.length > 0) yield batch;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
