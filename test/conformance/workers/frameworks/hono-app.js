// A small Hono app, written as its docs show: routes with params, middleware (hono/cors and a
// logger-ish one), JSON in and out, c.req.query, app.onError and app.notFound.
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';

const app = new Hono();

// Logger-ish: records the method and path, adds a header with what it saw.
app.use('*', async (c, next) => {
  const seen = `${c.req.method} ${c.req.path}`;
  await next();
  c.header('X-Seen', seen);
});
app.use('/api/*', cors({ origin: ['https://allowed.example'], allowHeaders: ['X-Custom'], exposeHeaders: ['X-Seen'], maxAge: 600, credentials: true }));

app.get('/', (c) => c.text('Hello Hono!'));
app.get('/api/users/:id', (c) => c.json({ id: c.req.param('id'), fields: c.req.query('fields') ?? null, all: c.req.queries('tag') ?? [] }));
app.get('/api/posts/:postId/comments/:commentId{[0-9]+}', (c) => c.json(c.req.param()));
app.post('/api/echo', async (c) => {
  const body = await c.req.json();
  return c.json({ received: body, type: c.req.header('content-type') }, 201);
});
app.put('/api/text', async (c) => c.text(`got ${await c.req.text()}`, 202, { 'X-Len': String((await c.req.text()).length) }));
app.get('/html', (c) => c.html('<h1>hi</h1>'));
app.get('/redirect', (c) => c.redirect('/api/users/1', 301));
app.get('/throw', () => {
  throw new Error('handler failed');
});
app.get('/http-exception', () => {
  throw new HTTPException(418, { message: 'teapot' });
});
app.get('/cookie', (c) => {
  c.header('Set-Cookie', 'a=1; Path=/', { append: true });
  c.header('Set-Cookie', 'b=2; HttpOnly', { append: true });
  return c.body(null, 204);
});
app.get('/headers', (c) => c.json({ ua: c.req.header('user-agent') ?? null, accept: c.req.header('Accept') ?? null, url: c.req.url }));

app.onError((error, c) => {
  if (error instanceof HTTPException) return c.json({ error: error.message }, error.status);
  return c.json({ error: error.message, kind: error.name }, 500);
});
app.notFound((c) => c.json({ error: 'not found', path: c.req.path }, 404));

export default app;
