// FormData: the part in every isolate's snapshot. The class, the multipart/form-data encoder
// and the formData() parsers (./sandbox/module.ts) are a sandbox module, loaded on first use
// with the Blob module it builds on.

import { callSync, createModule } from '../../sandbox/host-calls.ts';
import { currentTime } from '../clock/sandbox.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import { utf8Decode, utf8Encode } from '../encoding/sandbox.ts';
import { searchParams } from '../url/sandbox.ts';
import { blobApi } from '../blob/sandbox.ts';
import type { FormDataApi, FormDataDeps } from './sandbox/module.ts';
import {
  ArrayBuffer, ArrayPrototypePush, NumberPrototypeToString, StringPrototypePadStart, Uint8Array,
} from '../../sandbox/primordials.ts';

let api: FormDataApi | undefined;

export function formDataApi(): FormDataApi {
  if (api !== undefined) return api;
  const loaded = createModule<FormDataDeps, FormDataApi>('form-data', {
    blob: blobApi(),
    utf8Encode,
    utf8Decode,
    parseUrlencoded: (text) => {
      // The params' own iterator (the realm's array iterator is the tenant's to replace).
      const out: [string, string][] = [];
      new (searchParams().URLSearchParams)(text).forEach((value, name) => ArrayPrototypePush(out, [name, value] as [string, string]));
      return out;
    },
    randomHex: (n) => {
      const bytes = new Uint8Array(callSync('crypto.randomBytes', n));
      let s = '';
      for (let i = 0; i < bytes.length; i++) s += StringPrototypePadStart(NumberPrototypeToString(bytes[i]!, 16), 2, '0');
      return s;
    },
    now: currentTime,
  });
  // workerd: "Could not serialize object of type FormData" (DataCloneError).
  markNotSerializable(loaded.FormData);
  api = loaded;
  return api;
}

/** Whether `value` is a FormData of this runtime; never loads the module to say no. */
export function isFormData(value: unknown): boolean {
  return api !== undefined && api.isFormData(value);
}

export function formDataGlobals(): Record<string, () => unknown> {
  return { FormData: () => formDataApi().FormData };
}
