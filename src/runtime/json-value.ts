// A value JSON can carry. Its own module, importing nothing, so that code type-checked against
// the DOM rather than Node (the dashboard) can name it too.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
