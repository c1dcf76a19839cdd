/**
 * @module The Deno transport: Deno's own `fetch` with an HTTP client bound to the engine socket.
 *
 * Needs `--allow-read` and `--allow-write` on the socket and `--allow-net=unix:<socket>,localhost`
 * (the URL host must be allowed even though the request goes to the socket).
 */
import { ENGINE_ORIGIN, type EngineTransport } from '../engine/transport.ts'
import { describeTarget, type EngineTarget } from './docker-host.ts'
import { upgradeOver } from './upgrade.ts'

/** The few members of the `Deno` namespace this adapter uses, so the core compiles without Deno's typings. */
interface DenoHttpClientLike {
  close(): void
}
interface DenoConnLike {
  readable: ReadableStream<Uint8Array>
  writable: WritableStream<Uint8Array>
  closeWrite(): Promise<void>
  close(): void
}
interface DenoLike {
  connect(
    options: { transport: 'unix'; path: string } | { hostname: string; port: number },
  ): Promise<DenoConnLike>
  connectTls(options: {
    hostname: string
    port: number
    caCerts?: string[]
    cert?: string
    key?: string
  }): Promise<DenoConnLike>
  createHttpClient(options: {
    proxy?: { transport: 'unix'; path: string }
    caCerts?: string[]
    cert?: string
    key?: string
  }): DenoHttpClientLike
  readTextFileSync(path: string): string
}

const UNIX_ORIGIN = 'http://localhost'

const deno = () => (globalThis as unknown as { Deno: DenoLike }).Deno

export function createDenoTransport(target: EngineTarget): EngineTransport {
  const client = deno().createHttpClient(clientOptions(target))
  // Deno's client resolves the URL host on every new socket connection, even through a unix
  // proxy: `localhost` answers from /etc/hosts, where `docker` went to DNS and, under a burst of
  // connections, held every blocking-task thread (crypto.subtle included) waiting on it.
  const origin = target.kind === 'unix' ? UNIX_ORIGIN : target.origin
  let closed = false
  return {
    description: describeTarget(target),
    fetch(request) {
      const url = origin + request.url.slice(ENGINE_ORIGIN.length)
      return fetch(new Request(url, request), { client } as RequestInit)
    },
    async upgrade(request, options) {
      const conn = await connectRaw(target)
      let open = true
      return upgradeOver(
        {
          readable: conn.readable,
          writable: conn.writable,
          closeWrite: () => conn.closeWrite().catch(unlessClosed),
          close: () => {
            if (open) closeUnlessClosed(conn)
            open = false
          },
        },
        request,
        options,
      )
    },
    async close() {
      if (!closed) client.close()
      closed = true
    },
  }
}

/**
 * Closes `conn` unless Deno has closed it already: its `readable` closes the connection itself
 * once the engine ends it or a read fails, and `close()` then throws `BadResource`. Thrown from
 * the read-ahead's end, that failed an exec's output with a 502 and dropped what was read ahead
 * but not yet taken (test/transport/deno.test.ts).
 */
function closeUnlessClosed(conn: DenoConnLike): void {
  try {
    conn.close()
  } catch (error) {
    unlessClosed(error)
  }
}

/**
 * Rethrows anything but the `BadResource` of a connection Deno closed already: closing it, or
 * ending what we write on it (a session's `eof` after the engine ended its output), has nothing
 * left to do then.
 */
function unlessClosed(error: unknown): void {
  if (!(error instanceof Error && error.name === 'BadResource')) throw error
}

function clientOptions(target: EngineTarget) {
  if (target.kind === 'unix')
    return { proxy: { transport: 'unix' as const, path: target.socketPath } }
  if (target.kind === 'tcp') return {}
  const file = (name: string) => deno().readTextFileSync(`${target.certPath}/${name}`)
  return { caCerts: [file('ca.pem')], cert: file('cert.pem'), key: file('key.pem') }
}

/** A raw connection to the engine of its own, for a call the engine takes over (an exec session). */
function connectRaw(target: EngineTarget): Promise<DenoConnLike> {
  if (target.kind === 'unix') return deno().connect({ transport: 'unix', path: target.socketPath })
  const url = new URL(target.origin)
  const hostname = url.hostname.replace(/^\[|\]$/g, '')
  const port = Number(url.port || (target.kind === 'tls' ? 2376 : 2375))
  if (target.kind === 'tcp') return deno().connect({ hostname, port })
  return deno().connectTls({ hostname, port, ...clientOptions(target) })
}
