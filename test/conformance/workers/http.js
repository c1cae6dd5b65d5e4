// What a worker's Response becomes on the wire, and the request a worker receives; compared as
// status, status text, headers and body.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const q = url.searchParams;
    switch (url.pathname) {
      case '/status':
        return new Response('s', { status: Number(q.get('code')), statusText: q.get('text') ?? undefined });
      case '/null-status':
        return new Response(null, { status: Number(q.get('code')) });
      case '/cookies': {
        const h = new Headers();
        h.append('Set-Cookie', 'a=1; Path=/');
        h.append('Set-Cookie', 'b=2, c=3');
        h.append('X-Multi', 'x');
        h.append('X-Multi', 'y');
        return new Response('cookies', { headers: h });
      }
      case '/header-case':
        return new Response('c', { headers: { 'X-CamelCase': 'V', 'content-type': 'text/x-custom' } });
      case '/empty':
        return new Response('');
      case '/null':
        return new Response(null);
      case '/bytes':
        return new Response(new Uint8Array([0, 1, 2, 255]));
      case '/json':
        return Response.json({ ok: true, list: [1, 'two'] });
      case '/redirect':
        return Response.redirect('https://example.com/elsewhere', 302);
      case '/declared-length':
        return new Response('abc', { headers: { 'content-length': '3' } });
      case '/hop-by-hop':
        return new Response('h', { headers: { connection: 'x-remove', 'keep-alive': 'timeout=1', 'x-remove': 'y', upgrade: 'foo' } });
      case '/echo': {
        const body = request.body === null ? null : await request.text();
        const headers = [...request.headers].filter(([k]) => k !== 'host');
        return Response.json({ method: request.method, url: request.url, headers, body, host: request.headers.get('host') });
      }
      case '/head-body':
        return new Response('body for a HEAD', { headers: { 'x-h': '1' } });
      case '/large': {
        const chunk = 'abcdefghij'.repeat(1000);
        return new Response(chunk.repeat(20));
      }
      default:
        return new Response('not found', { status: 404 });
    }
  },
};
