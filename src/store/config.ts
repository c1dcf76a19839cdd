/**
 * @module The state store's settings from the environment, and the one way a store URL is
 * shown: pure parsing, no I/O. `DOCKGATE_STORE=redis://[user:password@]host[:port][/db]` (unset
 * or empty: memory) and `DOCKGATE_SECRET` (the key that signs stream tickets, shared by every
 * instance; required with Redis). A password is never in what `redactStoreUrl` or an error
 * here says.
 */

export interface RedisTarget {
  kind: 'redis'
  host: string
  port: number
  db: number
  username?: string | undefined
  password?: string | undefined
  /** The URL with its password (and user) replaced by `***`: the only form to show or log. */
  display: string
}

export type StoreTarget = { kind: 'memory'; display: 'memory' } | RedisTarget

export interface StoreSettings {
  store: StoreTarget
  /** The ticket-signing secret; undefined: a random key per process (one instance only). */
  secret: string | undefined
}

export interface StoreEnvironment {
  DOCKGATE_STORE?: string | undefined
  DOCKGATE_SECRET?: string | undefined
}

/** A secret short enough to guess is refused: a shared HMAC key must not be guessable. */
const MIN_SECRET_LENGTH = 16

/**
 * The store and secret the environment asks for; throws an Error whose message is one line
 * (for an entry to print before it exits) and never carries the URL's password.
 */
export function storeSettingsFromEnv(env: StoreEnvironment): StoreSettings {
  const store = parseStoreUrl(env.DOCKGATE_STORE)
  const secret = env.DOCKGATE_SECRET || undefined
  if (store.kind === 'redis' && secret === undefined) {
    throw new Error(
      `DOCKGATE_STORE is ${store.display} but DOCKGATE_SECRET is not set: instances sharing a store must share the secret that signs stream tickets`,
    )
  }
  if (secret !== undefined && secret.length < MIN_SECRET_LENGTH) {
    throw new Error(`DOCKGATE_SECRET must be at least ${MIN_SECRET_LENGTH} characters long`)
  }
  return { store, secret }
}

/** `redis://…` as a target; unset or empty: memory. Throws a one-line reason otherwise. */
export function parseStoreUrl(text: string | undefined): StoreTarget {
  if (text === undefined || text.trim() === '') return { kind: 'memory', display: 'memory' }
  const refuse = (why: string): never => {
    throw new Error(`DOCKGATE_STORE ${why}; expected redis://[user:password@]host[:port][/db]`)
  }
  let url: URL
  try {
    url = new URL(text.trim())
  } catch {
    // The text itself may hold a password: it is not repeated.
    return refuse('is not a URL')
  }
  if (url.protocol !== 'redis:') return refuse(`has the scheme ${url.protocol} (only redis:)`)
  if (url.hostname === '') return refuse('names no host')
  if (url.search !== '' || url.hash !== '') return refuse('has a query or fragment')
  const port = url.port === '' ? 6379 : Number(url.port)
  const path = url.pathname.replace(/^\//, '')
  if (!/^\d{0,2}$/.test(path)) return refuse('names a database that is not a number (0–15)')
  const db = path === '' ? 0 : Number(path)
  if (db > 15) return refuse('names a database that is not a number (0–15)')
  const username = url.username === '' ? undefined : decodeURIComponent(url.username)
  const password = url.password === '' ? undefined : decodeURIComponent(url.password)
  const credentials = username || password ? '***@' : ''
  return {
    kind: 'redis',
    host: url.hostname,
    port,
    db,
    username,
    password,
    display: `redis://${credentials}${url.hostname}:${port}/${db}`,
  }
}

/** Any text with a store URL's password (and user) replaced by `***`, for logs and errors. */
export function redactStoreUrl(text: string): string {
  return text.replace(/(redis:\/\/)[^@/\s]*@/gi, '$1***@')
}
