/**
 * @module One Redis connection for a gateway process, opened lazily: creating it does no I/O;
 * the first command connects. Exported for every part of an entry that needs Redis (the state
 * store here; shared events and revocations), so one process holds one connection.
 *
 * While Redis is unreachable the client reconnects in the background (backing off to 2 s) and
 * commands fail at once (no offline queue): a caller answers 503 rather than waiting.
 */
import { createClient, type RedisClientType } from '@redis/client'
import type { RedisTarget } from './config.ts'

/** How long the first command waits for the first connection before it fails. */
const FIRST_CONNECT_WAIT_MS = 1_000

export interface RedisConnection {
  /** The client (from `@redis/client`); `ready()` before using it. */
  readonly client: RedisClientType
  /** The URL without its password: what logs and problems may show. */
  readonly display: string
  /**
   * The client once it is connected: connects on first use; fails at once while a reconnect is
   * under way (Redis unreachable), and after `waitMs` for the very first connection.
   */
  ready(waitMs?: number): Promise<RedisClientType>
  /** Closes the connection (idempotent). */
  close(): Promise<void>
}

/** Opens (lazily) a connection to the Redis a parsed `DOCKGATE_STORE` names. */
export function openRedisConnection(
  target: RedisTarget,
  onError: (message: string) => void = () => {},
): RedisConnection {
  const client = createClient({
    socket: {
      host: target.host,
      port: target.port,
      connectTimeout: 2_000,
      reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 2_000),
    },
    username: target.username,
    password: target.password,
    database: target.db,
    disableOfflineQueue: true,
    // No per-command timer (by default each command gets an AbortSignal.timeout, a fifth of its
    // CPU cost): whoever sends commands times them out (the store: one watchdog for all).
    commandOptions: { timeout: 0 },
  }) as RedisClientType
  let lastError = ''
  // Without a listener an error event would throw; a reconnect loop reports each failure once.
  client.on('error', (error: unknown) => {
    const message = describe(error)
    if (message !== lastError) onError(`state store ${target.display}: ${message}`)
    lastError = message
  })
  let connecting: Promise<unknown> | undefined
  /** Connected once, or waited for in vain: from then on a command fails at once when not ready. */
  let failFast = false
  client.on('ready', () => {
    lastError = ''
    failFast = true
  })
  let closed = false
  return {
    client,
    display: target.display,
    async ready(waitMs = FIRST_CONNECT_WAIT_MS) {
      if (client.isReady) return client
      if (closed) throw new Error('the connection is closed')
      if (!connecting) {
        connecting = client.connect()
        connecting.catch(() => {})
      }
      if (failFast) throw new Error(lastError || 'not connected')
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(lastError || 'no answer')), waitMs)
      })
      try {
        await Promise.race([connecting, timeout])
      } catch (error) {
        failFast = true
        throw error
      } finally {
        clearTimeout(timer)
      }
      return client
    },
    async close() {
      if (closed) return
      closed = true
      if (client.isOpen) await client.close().catch(() => client.destroy())
      else client.destroy()
    },
  }
}

/** An error's message, never a URL with its password (the client does not print one; still). */
function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  return text.replace(/(redis:\/\/)[^@/\s]*@/gi, '$1***@')
}
