/**
 * @module The edge transport: the runtime's own `fetch` to an engine reached over HTTP(S).
 *
 * For Workers-style runtimes that have neither sockets nor client certificates; put a TLS- and
 * auth-terminating proxy in front of the engine there.
 */
import { ENGINE_ORIGIN, type EngineTransport } from '../engine/transport.ts'

export function createFetchTransport(
  origin: string,
  fetchImpl: typeof fetch = fetch,
): EngineTransport {
  const base = origin.replace(/\/+$/, '')
  return {
    description: base,
    fetch(request) {
      return fetchImpl(new Request(base + request.url.slice(ENGINE_ORIGIN.length), request))
    },
    async close() {},
  }
}
