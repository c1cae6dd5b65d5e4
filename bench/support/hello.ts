// The hello-world worker every throughput and memory benchmark serves, in isolet and workerd alike.
export const HELLO_BODY = 'Hello World';
export const HELLO_WORKER = `export default { fetch() { return new Response(${JSON.stringify(HELLO_BODY)}) } }`;
