// Types of scripts/node-bundle/http2-on-demand.mjs, for its test.
export declare const KNOWN_CONSTANTS: Readonly<Record<string, string | number>>
export declare const constants: Readonly<Record<string, unknown>>
export declare const Http2ServerRequest: { [Symbol.hasInstance](value: unknown): boolean }
export declare const connect: typeof import('node:http2').connect
