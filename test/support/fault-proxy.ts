/**
 * A fault injector for tests: a TCP proxy in front of the engine's TCP port that can be cut
 * (`down()`: stop listening and reset every connection, as an engine restart looks from the
 * gateway; `cut()`: reset the open connections only, as a middlebox dropping them; `end()`: end
 * them cleanly toward the gateway, a cut that reads as the end of what the engine sent), restored on the same port (`up()`), or stalled (`stall()`: a hung engine that
 * accepts connections and reads requests but answers nothing). Test-only; never part of the
 * gateway.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface FaultProxy {
  /** `tcp://127.0.0.1:<port>`, for `DOCKER_HOST`. */
  readonly dockerHost: string
  /** Connections the proxy has accepted so far. */
  readonly accepted: number
  /** Connections from the gateway that are open now. */
  readonly open: number
  /** Cuts every connection and refuses new ones. */
  down(): Promise<void>
  /** Resets the connections open now; new ones are accepted as before. */
  cut(): void
  /** Ends the connections open now toward the gateway (a FIN), their engine side reset. */
  end(): void
  /** Accepts connections again, on the same port. */
  up(): Promise<void>
  /** From now on nothing passes either way: every call waits forever. */
  stall(): void
  close(): Promise<void>
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const clients = new Set<Socket>()
  const upstreams = new Set<Socket>()
  let accepted = 0
  let stalled = false
  let port = 0
  let server: Server | undefined

  const forward = (from: Socket, to: Socket) =>
    from.on('data', (chunk) => {
      if (!stalled) to.write(chunk)
    })

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        accepted++
        const upstream = connect(target.port, target.host)
        clients.add(client)
        upstreams.add(upstream)
        const drop = () => {
          client.destroy()
          upstream.destroy()
          clients.delete(client)
          upstreams.delete(upstream)
        }
        client.on('error', drop).on('close', drop)
        upstream.on('error', drop).on('close', drop)
        forward(client, upstream)
        forward(upstream, client)
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        const address = s.address()
        if (address && typeof address === 'object') port = address.port
        server = s
        resolve()
      })
    })

  const cut = () => {
    for (const socket of [...clients, ...upstreams]) socket.resetAndDestroy()
    clients.clear()
    upstreams.clear()
  }

  const end = () => {
    for (const socket of upstreams) socket.resetAndDestroy()
    for (const socket of clients) socket.end()
    clients.clear()
    upstreams.clear()
  }

  const down = async () => {
    const s = server
    server = undefined
    cut()
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  await listen()
  return {
    dockerHost: `tcp://127.0.0.1:${port}`,
    get accepted() {
      return accepted
    },
    get open() {
      return clients.size
    },
    down,
    cut,
    end,
    up: () => (server ? Promise.resolve() : listen()),
    stall() {
      stalled = true
    },
    close: down,
  }
}
