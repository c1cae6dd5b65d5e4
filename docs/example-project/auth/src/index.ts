// The auth service: other workers of the account call verify() over RPC (a service binding);
// it has no public API of its own.

import { WorkerEntrypoint } from 'cloudflare:workers';

interface Env {
  TOKENS: string;
}

export default class Auth extends WorkerEntrypoint<Env> {
  async fetch(): Promise<Response> {
    return new Response('auth answers RPC calls only', { status: 404 });
  }

  async verify(token: string): Promise<{ name: string } | null> {
    const tokens: Record<string, string> = JSON.parse(this.env.TOKENS);
    return Object.hasOwn(tokens, token) ? { name: tokens[token]! } : null;
  }
}
