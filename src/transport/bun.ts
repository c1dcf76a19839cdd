/**
 * @module The Bun transport: Bun's own `fetch`, to the engine's Unix socket (its `unix` option),
 * over TCP, or over TLS with client certificates (its `tls` option). Bun-only.
 *
 * Bun's `fetch` is native: nothing of undici is loaded or evaluated, which the Node transport
 * costs Bun's cold start (bench/README.md, "Cold start on Bun, an entry of its own"). Bun keeps
 * its connections alive and opens another one for a call while the others are busy, up to its
 * limit of requests in flight for the whole process: 256, unless `BUN_CONFIG_MAX_HTTP_REQUESTS`
 * says more when Bun starts (setting it from JavaScript is too late). A held call (a follow, a
 * stats stream, an events stream) keeps one of them for as long as it lasts; past the limit every
 * other engine call waits for one to end (with 256 `/events` held, a `/_ping` was still waiting
 * after 5 s; with 255 it answered at once). README, "On Bun".
 * An upgraded call (an exec session) has a raw socket of its own, from `node:net` (or `node:tls`),
 * loaded with the first one: `fetch` cannot hand out the connection.
 */
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { ENGINE_ORIGIN, type EngineTransport } from '../engine/transport.ts'
import { describeTarget, type EngineTarget } from './docker-host.ts'
import { upgradeSocket } from './node-upgrade.ts'

/** Bun's additions to `RequestInit` this adapter uses (so the core compiles without Bun's typings). */
interface BunFetchOptions {
  unix?: string
  tls?: { ca: string; cert: string; key: string; rejectUnauthorized: boolean }
  /** Engine answers are never encoded; Bun would otherwise ask for gzip and inflate. */
  decompress?: boolean
}

/**
 * The Unix socket's requests need a host in their URL; Bun sends it as `Host` and never resolves
 * it (the `unix` option decides where the bytes go).
 */
const UNIX_ORIGIN = 'http://localhost'

export function createBunTransport(target: EngineTarget): EngineTransport {
  const origin = target.kind === 'unix' ? UNIX_ORIGIN : target.origin
  const options = fetchOptions(target)
  return {
    description: describeTarget(target),
    async fetch(request) {
      const body = request.body ? await request.arrayBuffer() : undefined
      const init: RequestInit & BunFetchOptions = {
        method: request.method,
        headers: request.headers,
        body,
        signal: request.signal,
        redirect: 'manual',
        ...options,
      }
      return fetch(origin + request.url.slice(ENGINE_ORIGIN.length), init)
    },
    async upgrade(request, upgradeOptions) {
      return upgradeSocket(await openSocket(target, options), request, upgradeOptions)
    },
    // Bun's pool of kept-alive connections is the process's, closed with it.
    async close() {},
  }
}

function fetchOptions(target: EngineTarget): BunFetchOptions {
  if (target.kind === 'unix') return { unix: target.socketPath, decompress: false }
  if (target.kind === 'tcp') return { decompress: false }
  const file = (name: string) => readFileSync(join(target.certPath, name), 'utf8')
  return {
    decompress: false,
    tls: {
      ca: file('ca.pem'),
      cert: file('cert.pem'),
      key: file('key.pem'),
      rejectUnauthorized: target.verify,
    },
  }
}

/** A connection of its own to the engine, for a call the engine takes over (an exec's session). */
function openSocket(target: EngineTarget, options: BunFetchOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket
    if (target.kind === 'unix') {
      socket = process.getBuiltinModule('node:net').connect({ path: target.socketPath })
    } else {
      const url = new URL(target.origin)
      const host = url.hostname.replace(/^\[|\]$/g, '')
      const port = Number(url.port || (target.kind === 'tls' ? 2376 : 2375))
      socket =
        target.kind === 'tls'
          ? process.getBuiltinModule('node:tls').connect({
              host,
              port,
              ...options.tls,
              servername: /^[\d.]+$/.test(host) || host.includes(':') ? undefined : host,
            })
          : process.getBuiltinModule('node:net').connect({ host, port })
    }
    const ready = target.kind === 'tls' ? 'secureConnect' : 'connect'
    socket.once(ready, () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}
