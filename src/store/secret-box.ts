// Secrets at rest: AES-256-GCM, a fresh random IV per value, and the secret's owner and name
// as additional data, so a ciphertext copied onto another worker's or another name's row does
// not decrypt. The key comes from ISOLET_SECRETS_KEY (base64 of 32 bytes) or from a key file
// in the data directory, made at first start and readable by its owner only.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, openSync, readFileSync, writeSync, closeSync, fsyncSync, linkSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';

const KEY_BYTES = 32;
const IV_BYTES = 12;

export interface SealedValue {
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`A secrets key is ${KEY_BYTES} bytes, not ${key.length}.`);
    this.#key = Buffer.from(key);
  }

  seal(plaintext: string, context: string): SealedValue {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { iv, tag: cipher.getAuthTag(), ciphertext };
  }

  /** Throws when the key is wrong or the value was tampered with. */
  open(sealed: SealedValue, context: string): string {
    const decipher = createDecipheriv('aes-256-gcm', this.#key, sealed.iv);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
  }

  /** seal, as one line of JSON text (for a file or a text column). */
  sealText(plaintext: string, context: string): string {
    const sealed = this.seal(plaintext, context);
    return JSON.stringify({ iv: sealed.iv.toString('base64'), tag: sealed.tag.toString('base64'), ciphertext: sealed.ciphertext.toString('base64') });
  }

  /** open, of what sealText made; throws when the key is wrong or the text was tampered with. */
  openText(text: string, context: string): string {
    const parsed = JSON.parse(text) as Record<string, string>;
    return this.open({ iv: Buffer.from(parsed.iv!, 'base64'), tag: Buffer.from(parsed.tag!, 'base64'), ciphertext: Buffer.from(parsed.ciphertext!, 'base64') }, context);
  }
}

/**
 * The secrets key: ISOLET_SECRETS_KEY when set, else `<dataDir>/secrets.key`, which is created
 * (mode 0600) when missing unless `shared` (a cluster's nodes need the one key the database was
 * made with, so none may make its own). Returns where it came from, for the start-up log.
 */
export function loadSecretsKey(dataDir: string, env: NodeJS.ProcessEnv = process.env, shared = false): { key: Buffer; source: string } {
  const fromEnv = env.ISOLET_SECRETS_KEY;
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = Buffer.from(fromEnv, 'base64');
    if (key.length !== KEY_BYTES) {
      throw new Error(
        `ISOLET_SECRETS_KEY must be the base64 of ${KEY_BYTES} random bytes (it decodes to ${key.length}). ` +
          `Make one with: node -e "console.log(crypto.randomBytes(32).toString('base64'))"`,
      );
    }
    return { key, source: 'ISOLET_SECRETS_KEY' };
  }
  const path = join(dataDir, 'secrets.key');
  let key: Buffer;
  try {
    key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    ownerOnly(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (shared) {
      throw new Error(
        `With --database every node needs the cluster's secrets key: set ISOLET_SECRETS_KEY (base64 of ${KEY_BYTES} random bytes, the same on every node) ` +
          `or put the key file at ${path}. Make one with: node -e "console.log(crypto.randomBytes(32).toString('base64'))"`,
      );
    }
    key = randomBytes(KEY_BYTES);
    writeNewFile(path, key.toString('base64') + '\n');
  }
  if (key.length !== KEY_BYTES) throw new Error(`${path} must hold the base64 of ${KEY_BYTES} bytes; it is damaged.`);
  return { key, source: path };
}

/** Makes an existing file readable by its owner only (one from an older isolet, or copied in with another mode). */
export function ownerOnly(path: string): void {
  chmodSync(path, 0o600);
}

/**
 * Creates a file that must not exist yet, mode 0600, whole or not at all: written and synced
 * aside, then linked into place (a link never replaces an existing file), then the directory
 * synced, so a crash never leaves an empty key behind.
 */
export function writeNewFile(path: string, text: string): void {
  const aside = `${path}.${process.pid}.tmp`;
  const fd = openSync(aside, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(aside, path);
  } finally {
    unlinkSync(aside);
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
