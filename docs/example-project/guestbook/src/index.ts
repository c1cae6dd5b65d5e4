// A guestbook: the page is a static asset, entries live in KV, signing needs a token the auth
// worker accepts, and a nightly cron counts the entries.

interface Env {
  GUESTBOOK: KVNamespace;
  AUTH: Service<import('../../auth/src/index').default>;
  ASSETS: Fetcher;
}

interface Entry {
  name: string;
  message: string;
  at: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/api/entries' && request.method === 'GET') {
      const listed = await env.GUESTBOOK.list({ prefix: 'entry:' });
      const entries = await Promise.all(listed.keys.map((key) => env.GUESTBOOK.get<Entry>(key.name, 'json')));
      return Response.json(entries);
    }
    if (url.pathname === '/api/entries' && request.method === 'POST') {
      const token = request.headers.get('authorization')?.replace(/^Bearer /, '') ?? '';
      let user: { name: string } | null;
      try {
        user = await env.AUTH.verify(token);
      } catch (error) {
        return new Response(`auth is unavailable: ${(error as Error).message}`, { status: 503 });
      }
      if (user === null) return new Response('sign in first', { status: 401 });
      const entry: Entry = { name: user.name, message: (await request.text()).slice(0, 280), at: new Date().toISOString() };
      await env.GUESTBOOK.put(`entry:${entry.at}:${crypto.randomUUID()}`, JSON.stringify(entry));
      return Response.json(entry, { status: 201 });
    }
    if (url.pathname === '/api/stats') {
      return Response.json((await env.GUESTBOOK.get('stats', 'json')) ?? { entries: 0, countedAt: null });
    }
    // Anything else is a file of public/ (or its 404).
    return env.ASSETS.fetch(request);
  },

  async scheduled(controller: ScheduledController, env: Env): Promise<void> {
    let entries = 0;
    let cursor: string | undefined;
    do {
      const page = await env.GUESTBOOK.list({ prefix: 'entry:', cursor });
      entries += page.keys.length;
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor !== undefined);
    await env.GUESTBOOK.put('stats', JSON.stringify({ entries, cron: controller.cron, countedAt: controller.scheduledTime }));
  },
} satisfies ExportedHandler<Env>;
