// The admin API's answers as JSON (docs/ADMIN_API.md), declared once: the server builds them
// (admin-api.ts), and the CLI (src/cli/api-client.ts) and the dashboard's browser code
// (src/dashboard/client/api.ts) read them. Types only, importing only Node-free types, so that
// the dashboard, type-checked against the DOM rather than Node, can use them too.

import type { BindingSpec } from '../bridge/bindings.ts';
import type { JsonValue } from '../runtime/json-value.ts';

export interface AccountSummary {
  id: string;
  name: string;
  createdAt: string;
}

/** An account token as listed: never its secret. */
export interface TokenSummary {
  id: string;
  description: string;
  createdAt: string;
}

/** One immutable deployed version of a worker. */
export interface Version {
  id: string;
  number: number;
  hash: string;
  createdAt: string;
  author: string;
  message: string | null;
  active: boolean;
}

export interface WorkerSummary {
  name: string;
  account: string;
  activeVersion: Version | null;
  routes: string[];
  updatedAt: string;
}

/** `GET /v1/workers/:name`: the summary with what the active version sets. */
export interface WorkerDetails extends WorkerSummary {
  vars: Record<string, JsonValue>;
  limits: Record<string, number>;
  compatibilityDate: string | null;
  crons: string[];
  compatibilityFlags: string[];
  bindings: Record<string, BindingSpec>;
  /** The names of its secrets, never their values. */
  secrets: string[];
}

/** A secret as listed: its name, never its value. */
export interface SecretSummary {
  name: string;
  updatedAt: string;
}
