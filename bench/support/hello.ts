// The hello-world worker every throughput and memory benchmark serves, in isolet and workerd alike.
export const HELLO_WORKER = "export default { fetch() { return new Response('Hello World') } }";
