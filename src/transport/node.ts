/**
 * @module Node transports: undici over a Unix socket, TCP, or TLS with client certificates.
 *
 * One undici `Agent` serves every call. `bodyTimeout: 0` because log and event streams stay quiet
 * for as long as they like; ordinary calls are bounded by the engine client's own timeout.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, fetch as undiciFetch } from 'undici'
import { ENGINE_ORIGIN, type EngineTransport } from '../engine/transport.ts'
import { describeTarget, type EngineTarget } from './docker-host.ts'

export interface NodeTransportOptions {
  /** Upper bound on pooled connections per origin. */
  connections?: number
}

const liveRequests = new WeakMap<object, Request>()

export function createNodeTransport(
  target: EngineTarget,
  options: NodeTransportOptions = {},
): EngineTransport {
  const agent = new Agent({
    bodyTimeout: 0,
    headersTimeout: 0,
    connections: options.connections ?? 64,
    connect: connectOptions(target),
  })
  const origin = target.kind === 'unix' ? ENGINE_ORIGIN : target.origin
  let closed: Promise<void> | undefined
  return {
    description: describeTarget(target),
    async fetch(request) {
      const url = origin + request.url.slice(ENGINE_ORIGIN.length)
      const body = request.body ? await request.arrayBuffer() : undefined
      const response = await undiciFetch(url, {
        method: request.method,
        headers: Object.fromEntries(request.headers),
        body,
        signal: request.signal,
        dispatcher: agent,
      })
      // Node's Request follows its caller's abort signal only while the Request object lives
      // (nodejs/undici#1926): keep it alive as long as its body can still be read, or a client
      // that leaves could no longer cancel a long engine stream.
      if (response.body) liveRequests.set(response.body, request)
      // undici's Response is structurally a Web Response; the core only uses the standard surface.
      return response as unknown as Response
    },
    close() {
      closed ??= agent.close()
      return closed
    },
  }
}

function connectOptions(target: EngineTarget) {
  if (target.kind === 'unix') return { socketPath: target.socketPath }
  if (target.kind === 'tcp') return {}
  const file = (name: string) => readFileSync(join(target.certPath, name))
  return {
    ca: file('ca.pem'),
    cert: file('cert.pem'),
    key: file('key.pem'),
    rejectUnauthorized: target.verify,
  }
}
