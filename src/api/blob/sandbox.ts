// Blob and File: the part in every isolate's snapshot. The classes (./sandbox/module.ts) are a
// sandbox module, evaluated on first use (a global read, a FormData, body.blob()); before that
// no Blob can exist, so isBlob() answers without loading anything.

import { createModule } from '../../sandbox/host-calls.ts';
import { currentTime } from '../clock/sandbox.ts';
import { utf8Decode, utf8Encode } from '../encoding/sandbox.ts';
import { streams } from '../streams/sandbox.ts';
import { markNotSerializable, markSerializable } from '../structured-clone/sandbox.ts';
import type { BlobApi, BlobDeps } from './sandbox/module.ts';

export type { BlobApi };
type Blob = InstanceType<BlobApi['Blob']>;

let api: BlobApi | undefined;

export function blobApi(): BlobApi {
  if (api !== undefined) return api;
  const loaded = createModule<BlobDeps, BlobApi>('blob', {
    utf8Encode,
    utf8Decode,
    streamFromSource: (source) => streams().streamFromSource(source),
    now: currentTime,
  });
  // workerd clones a Blob in structuredClone (its bytes are immutable: the copy shares them),
  // but not a File (DataCloneError).
  markSerializable(loaded.Blob, (b) => loaded.blobOf(loaded.bytesOf(b as Blob), (b as Blob).type));
  markNotSerializable(loaded.File);
  api = loaded;
  return api;
}

/** Whether `value` is a Blob (or File) of this runtime; never loads the module to say no. */
export function isBlob(value: unknown): boolean {
  return api !== undefined && api.isBlob(value);
}

export function blobGlobals(): Record<string, () => unknown> {
  return { Blob: () => blobApi().Blob, File: () => blobApi().File };
}
