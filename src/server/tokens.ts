// Bearer tokens: `isl_` + 32 random bytes in base64url, shown once; only their SHA-256 is
// kept. The operator's admin token comes from ISOLET_ADMIN_TOKEN or a file made at first start.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownerOnly, writeNewFile } from '../store/secret-box.ts';

export const TOKEN_PREFIX = 'isl_';

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The SHA-256 of the token in an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerHash(header: string | undefined): Buffer | undefined {
  const match = header === undefined ? null : /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return match === null ? undefined : hashToken(match[1]!);
}

/** Constant-time equality of two tokens, by their hashes (equal lengths whatever the inputs). */
export function sameToken(presentedHash: Buffer, expectedHash: Buffer): boolean {
  return timingSafeEqual(presentedHash, expectedHash);
}

/**
 * The admin token: ISOLET_ADMIN_TOKEN when set, else `<dataDir>/admin-token`, created (mode
 * 0600) when missing unless `shared` (every node of a cluster takes the same one). `created` says
 * whether it was made now, so the caller can say where it is.
 */
export function loadAdminToken(dataDir: string, env: NodeJS.ProcessEnv = process.env, shared = false): { token: string; source: string; created: boolean } {
  const fromEnv = env.ISOLET_ADMIN_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 16) throw new Error('ISOLET_ADMIN_TOKEN is too short: use at least 16 random characters.');
    // A token file from an earlier start still opens the admin API if the variable goes away.
    try {
      ownerOnly(join(dataDir, 'admin-token'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return { token: fromEnv, source: 'ISOLET_ADMIN_TOKEN', created: false };
  }
  const path = join(dataDir, 'admin-token');
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length < 16) throw new Error(`${path} is damaged (too short): delete it to have a new admin token made.`);
    ownerOnly(path);
    return { token, source: path, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (shared) {
    throw new Error(
      `With --database every node takes the cluster's one admin token: set ISOLET_ADMIN_TOKEN (at least 16 random characters, the same on every node) or put it in ${path}.`,
    );
  }
  const token = newToken();
  writeNewFile(path, token + '\n');
  return { token, source: path, created: true };
}
