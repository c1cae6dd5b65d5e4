// A Hono app as a worker: routes with params, JSON in and out, a middleware, and error and
// 404 handlers. `npm start` in the isolet repo serves it at http://hono.localhost:8787/; in a
// copy of this folder, `npm install` then `isolet dev`.
//   curl http://hono.localhost:8787/users/42
//   curl -d '{"title":"write docs"}' -H 'content-type: application/json' http://hono.localhost:8787/todos

import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';

type Env = {
  Bindings: { GREETING: string };
  Variables: { requestId: string };
};

const app = new Hono<Env>();

// Every response says which request it answers, for matching it with the logs.
app.use(async (c, next) => {
  const requestId = c.req.header('x-request-id') ?? crypto.randomUUID();
  c.set('requestId', requestId);
  await next();
  c.header('x-request-id', requestId);
});

app.get('/', (c) => c.text(`${c.env.GREETING} from Hono on isolet!\n`));

app.get('/users/:id{[0-9]+}', (c) => {
  const id = Number(c.req.param('id'));
  return c.json({ id, name: `user ${id}` });
});

app.post('/todos', async (c) => {
  const body = await c.req.json<{ title?: unknown }>().catch(() => {
    throw new HTTPException(400, { message: 'send a JSON object: {"title": "..."}' });
  });
  if (typeof body.title !== 'string' || body.title === '') {
    throw new HTTPException(422, { message: '`title` must be a non-empty string' });
  }
  return c.json({ id: crypto.randomUUID(), title: body.title, done: false }, 201);
});

app.get('/error', () => {
  throw new Error('something broke');
});

app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

app.onError((error, c) => {
  if (error instanceof HTTPException) return c.json({ error: error.message }, error.status);
  console.error(`request ${c.get('requestId')} failed:`, error);
  return c.json({ error: 'internal error', requestId: c.get('requestId') }, 500);
});

export default app;
