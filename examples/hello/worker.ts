// The quick-start worker: `npm start` serves it (with the other examples), then try
//   curl http://hello.localhost:8787/
//   curl http://hello.localhost:8787/hello/you
//   curl -d 'some text' http://hello.localhost:8787/echo
// Or run it alone, reloading on change: `isolet dev` in this folder (http://127.0.0.1:8787/).

interface Env {
  /** From [vars] in wrangler.toml; try `isolet dev --var GREETING:Howdy`. */
  GREETING?: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);

    if (url.pathname === '/') {
      return new Response('Hello from isolet!\n');
    }

    const greet = /^\/hello\/([^/]+)$/.exec(url.pathname);
    if (greet) {
      const name = decodeURIComponent(greet[1]!);
      return Response.json({ greeting: `${env.GREETING ?? 'Hello'}, ${name}!`, at: new Date().toISOString() });
    }

    if (url.pathname === '/echo' && request.method === 'POST') {
      // The body streams through: the worker never holds it whole.
      return new Response(request.body, { headers: { 'content-type': request.headers.get('content-type') ?? 'text/plain' } });
    }

    return new Response('Not found\n', { status: 404 });
  },
};
