/**
 * A fault injector for tests: a TCP proxy in front of the engine's TCP port that can be cut
 * (`down()`: stop listening and reset every connection, as an engine restart looks from the
 * gateway) and restored on the same port (`up()`). Test-only; never part of the gateway.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface FaultProxy {
  /** `tcp://127.0.0.1:<port>`, for `DOCKER_HOST`. */
  readonly dockerHost: string
  /** Connections the proxy has accepted so far. */
  readonly accepted: number
  /** Cuts every connection and refuses new ones. */
  down(): Promise<void>
  /** Accepts connections again, on the same port. */
  up(): Promise<void>
  close(): Promise<void>
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const sockets = new Set<Socket>()
  let accepted = 0
  let port = 0
  let server: Server | undefined

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        accepted++
        const upstream = connect(target.port, target.host)
        sockets.add(client)
        sockets.add(upstream)
        const drop = () => {
          client.destroy()
          upstream.destroy()
          sockets.delete(client)
          sockets.delete(upstream)
        }
        client.on('error', drop).on('close', drop)
        upstream.on('error', drop).on('close', drop)
        client.pipe(upstream)
        upstream.pipe(client)
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        const address = s.address()
        if (address && typeof address === 'object') port = address.port
        server = s
        resolve()
      })
    })

  const down = async () => {
    const s = server
    server = undefined
    for (const socket of sockets) socket.resetAndDestroy()
    sockets.clear()
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  await listen()
  return {
    dockerHost: `tcp://127.0.0.1:${port}`,
    get accepted() {
      return accepted
    },
    down,
    up: () => (server ? Promise.resolve() : listen()),
    close: down,
  }
}
