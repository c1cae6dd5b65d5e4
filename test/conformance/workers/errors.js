// Uncaught exceptions and bad return values: both runtimes answer 500; only the status is
// compared (deviations.ts says why).
export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    switch (pathname) {
      case '/throw':
        throw new Error('thrown synchronously');
      case '/reject':
        await null;
        throw new TypeError('rejected after an await');
      case '/throw-string':
        throw 'a string';
      case '/return-undefined':
        return undefined;
      case '/return-string':
        return 'not a Response';
      case '/return-object':
        return { status: 200 };
      case '/response-error':
        return Response.error();
      case '/never-settles-timer':
        // Throws from a timer after the response: the request itself succeeded.
        setTimeout(() => {
          throw new Error('late');
        }, 0);
        return new Response('ok');
      case '/used-body':
        const r = new Response('x');
        await r.text();
        return r;
      default:
        return new Response('not found', { status: 404 });
    }
  },
};
