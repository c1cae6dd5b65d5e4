// A small itty-router app, as its docs show: AutoRouter with json/error helpers, params, query,
// CORS via cors(), a 404 and thrown errors.
import { AutoRouter, cors, error, json, StatusError, text } from 'itty-router';

const { preflight, corsify } = cors({ origin: 'https://allowed.example', allowMethods: ['GET', 'POST', 'PUT'], exposeHeaders: ['X-Total'] });

const router = AutoRouter({
  before: [preflight],
  finally: [corsify],
});

router
  .get('/', () => 'Hello itty!')
  .get('/items/:id', ({ params, query }) => ({ id: params.id, query }))
  .get('/files/:path+', ({ params }) => ({ path: params.path }))
  .get('/optional/:name?', ({ params }) => ({ name: params.name ?? null }))
  .post('/items', async (request) => {
    const body = await request.json();
    return json({ created: body }, { status: 201, headers: { 'X-Total': '1' } });
  })
  .get('/text', () => text('plain words'))
  .get('/teapot', () => error(418, 'I am a teapot'))
  .get('/status-error', () => {
    throw new StatusError(400, 'bad input');
  })
  .get('/throw', () => {
    throw new Error('handler failed');
  })
  .get('/raw', () => new Response('raw response', { status: 203, headers: { 'X-Raw': 'yes' } }));

export default router;
