/**
 * @module Node only, imported first by `src/node.ts`: the Fetch globals (`fetch`, `Headers`,
 * `Request`, `Response`, `FormData`) become those of the undici the gateway already uses for the
 * engine (pinned in package.json), as undici's own documented `install()` does, less the WebSocket
 * and EventSource classes the gateway never uses.
 *
 * Why: Node 20 carries a second undici of its own behind those globals, loaded on their first
 * touch, and `@hono/node-server` touches them as it is evaluated (its `Request` extends the
 * global one). Loading that copy (and compiling its llhttp WebAssembly) was about a fifth of the
 * CPU a gateway spent before it listened (bench `cold`, issue #17; figures in bench/README.md,
 * "Cold start"). With the globals swapped, one undici serves both the requests the gateway
 * answers and the calls it makes. Bun keeps its own native classes: there is no second copy to
 * avoid, and its are faster.
 */
import { FormData, fetch, Headers, Request, Response } from 'undici'

if (!('bun' in process.versions)) {
  const classes = { fetch, Headers, Request, Response, FormData }
  for (const [name, value] of Object.entries(classes)) {
    // As Node defines them: writable, configurable, not enumerable.
    Object.defineProperty(globalThis, name, {
      value,
      writable: true,
      configurable: true,
      enumerable: false,
    })
  }
}
