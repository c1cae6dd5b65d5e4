// A request that can never be answered: its handler's promise is pending and nothing that could
// settle it is. workerd answers such a request with 500 and logs "The script will never generate
// a response." once its I/O context has no pending event left (no timer, no I/O) and its thread
// is idle; isolet does the same, without leaving the client waiting until it gives up.
//
// What counts as pending (WorkerIsolate.mayRunAgain): a call into the isolate running or queued,
// a host operation not yet answered (fetch, a body read, crypto.subtle, ...), a timer, or a
// streamed response body still open (the host pulls it as the client reads). Unlike workerd,
// which looks at one request's own events only, isolet looks at the whole isolate: a request
// whose promise another in-flight request will settle (a shared fetch, a cache fill) is kept
// waiting while that request has work pending. A promise that only a request yet to arrive, or
// only the client's disconnect (request.signal), could settle counts as never settled, as in
// workerd: keep a timer (or other work) pending to wait for those.

export const NEVER_RESPONDS_MESSAGE =
  'The script will never generate a response: the fetch handler\'s promise is still pending and nothing that could settle it is ' +
  '(no timer, fetch, body read or other I/O of this worker is in progress). Resolve the promise returned from fetch() ' +
  '(or passed to respondWith()), e.g. return the Response once the work it waits for is done.';

export const NEVER_RESPONDS_BODY = 'Error 1101: The script will never generate a response.\n';
