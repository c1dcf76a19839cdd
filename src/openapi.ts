/**
 * @module The OpenAPI 3.1 document, generated from the routes' zod schemas without an engine.
 */
import { createApp } from './app.ts'
import { EngineClient } from './engine/client.ts'
import type { EngineTransport } from './engine/transport.ts'

/** Generating the document never calls the engine; a transport that refuses proves it. */
const NO_ENGINE: EngineTransport = {
  description: 'none',
  fetch: () => Promise.reject(new Error('no engine while generating the OpenAPI document')),
  close: async () => {},
}

function openApiDocument() {
  // Built and never started: building reaches nothing.
  return createApp({
    engine: new EngineClient(NO_ENGINE),
    authenticator: { authenticate: async () => undefined },
  }).document()
}

/** The committed form: stable key order from the generator, two-space indent, final newline. */
export const openApiText = async () => `${JSON.stringify(await openApiDocument(), null, 2)}\n`
