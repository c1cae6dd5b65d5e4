// The hello-world worker every throughput and memory benchmark serves, in isolet and workerd alike.
export const HELLO_BODY = 'Hello World';
/** The content type Workers gives `new Response(text)`: the reference servers answer with it too. */
export const HELLO_CONTENT_TYPE = 'text/plain;charset=UTF-8';
export const HELLO_WORKER = `export default { fetch() { return new Response(${JSON.stringify(HELLO_BODY)}) } }`;
