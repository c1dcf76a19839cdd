/**
 * @module Static API tokens: generated with high entropy, stored only as SHA-256 hashes.
 *
 * A token carries 256 random bits, so a fast hash is enough (no password stretching needed);
 * lookup hashes the presented token once and finds its digest among the stored ones.
 *
 * The stored digests are the keys of a hash table, not compared one by one in constant time:
 * what a lookup's timing can depend on is the presented token's own SHA-256 digest, which says
 * nothing about a stored token (learning that a guess's digest shares its first bytes with a
 * stored one does not bring the next guess closer: that would take a preimage of SHA-256). And a
 * table costs the same whatever the number of tokens, where visiting every stored hash cost each
 * request 0.49 µs with 10 tokens, 4.7 µs with 100 and 48 µs with 1,000 (Node 20, a loop of 200,000
 * lookups), against 35 µs of CPU for a whole small request (bench/results/latest.md).
 */
import { DEFAULT_POLICY, type Policy } from '../domain/policy.ts'
import { type Principal, principalId, type Scope } from '../domain/principal.ts'

const TOKEN_PREFIX = 'dgt_'
const HASH_PREFIX = 'sha256:'

export interface TokenEntry {
  name: string
  hash: string
  scopes: readonly Scope[]
  policy?: Policy | undefined
}

export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  return TOKEN_PREFIX + base64url(bytes)
}

export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
  return HASH_PREFIX + hex(new Uint8Array(digest))
}

export class TokenStore {
  readonly #principals: Principal[]
  /** Each stored token's principal by its digest (hex): the first entry of a digest given twice. */
  readonly #byDigest = new Map<string, Principal>()
  readonly #envToken: string | undefined
  /** Whether `DOCKGATE_TOKEN`'s digest is in `#byDigest` (when it is no stored token's too). */
  #envHashed = false
  #env: Promise<Principal> | undefined

  constructor(entries: readonly TokenEntry[], envToken?: string) {
    this.#principals = entries.map((entry) => {
      const digest = entry.hash.slice(HASH_PREFIX.length).toLowerCase()
      const principal: Principal = {
        id: principalId.token(entry.name),
        kind: 'token',
        scopes: new Set(entry.scopes),
        policy: entry.policy ?? DEFAULT_POLICY,
        fingerprint: fingerprint(digest),
      }
      if (!this.#byDigest.has(digest)) this.#byDigest.set(digest, principal)
      return principal
    })
    this.#envToken = envToken
  }

  get size(): number {
    return this.#principals.length + (this.#envToken ? 1 : 0)
  }

  authenticate(token: string): Promise<Principal | undefined> {
    const presented = recentDigests.get(token)
    // The usual case, every digest known already: decide now, without hashing or waiting.
    if (typeof presented === 'string' && (!this.#envToken || this.#envHashed)) {
      return Promise.resolve(this.#byDigest.get(presented))
    }
    return this.#hashThenFind(token)
  }

  /** Decided as `authenticate` decides it, when every digest is known already. */
  knownPrincipal(token: string): Principal | undefined {
    const presented = recentDigests.get(token)
    if (typeof presented === 'string' && (!this.#envToken || this.#envHashed)) {
      return this.#byDigest.get(presented)
    }
    return undefined
  }

  /**
   * The token (or `DOCKGATE_TOKEN`) of that principal id, as it is configured now; when the
   * issuing principal's `fingerprint` is given, only while that same token is (a token rotated
   * under the same name is another credential).
   */
  async principalOf(issued: {
    id: string
    kind: Principal['kind']
    fingerprint?: string | undefined
  }): Promise<Principal | undefined> {
    let principal: Principal | undefined
    if (issued.kind === 'env-token') {
      principal =
        this.#envToken && issued.id === ENV_PRINCIPAL.id ? await this.#envPrincipal() : undefined
    } else if (issued.kind === 'token') {
      principal = this.#principals.find((p) => p.id === issued.id)
    }
    if (!principal) return undefined
    return issued.fingerprint === undefined || issued.fingerprint === principal.fingerprint
      ? principal
      : undefined
  }

  async #hashThenFind(token: string): Promise<Principal | undefined> {
    const presented = await digestOf(token)
    if (this.#envToken && !this.#envHashed) await this.#envPrincipal()
    return this.#byDigest.get(presented)
  }

  /** `DOCKGATE_TOKEN`'s principal, its digest known (and in `#byDigest` unless a stored token's). */
  async #envPrincipal(): Promise<Principal> {
    this.#env ??= Promise.resolve(digestOf(this.#envToken!)).then((envDigest) => {
      const principal = { ...ENV_PRINCIPAL, fingerprint: fingerprint(envDigest) }
      // A stored token that is also DOCKGATE_TOKEN stays the stored token's principal.
      if (!this.#byDigest.has(envDigest)) this.#byDigest.set(envDigest, principal)
      this.#envHashed = true
      return principal
    })
    return this.#env
  }
}

/** Hex digits of a digest that a fingerprint keeps: 64 bits (a ticket carries it in a URL). */
const FINGERPRINT_DIGITS = 16

/**
 * A credential's fingerprint in a principal (`Principal.fingerprint`): the first 64 bits of the
 * token's SHA-256 digest, as a stream ticket carries it (in a URL: not the whole digest).
 */
const fingerprint = (digest: string) => `t:${digest.slice(0, FINGERPRINT_DIGITS)}`

/** The first 64 bits of a secret's SHA-256 digest, in hex: which secret, and nothing of it. */
export async function secretFingerprint(secret: string): Promise<string> {
  return (await hashToken(secret)).slice(
    HASH_PREFIX.length,
    HASH_PREFIX.length + FINGERPRINT_DIGITS,
  )
}

/** The principal behind `DOCKGATE_TOKEN`, for automation. */
const ENV_PRINCIPAL: Principal = {
  id: principalId.env(),
  kind: 'env-token',
  scopes: new Set(['admin']),
  policy: DEFAULT_POLICY,
}

/**
 * Digests (hex) of recently presented tokens: hashing with WebCrypto costs about 0.3 ms per
 * request on Node 20. Only the hashing is cached; every request still looks its digest up among
 * the stored ones, so nothing about the decision depends on the cache. An entry is the digest
 * itself once computed (so that a known token needs no await), its promise until then.
 */
const recentDigests = new Map<string, string | Promise<string>>()
const RECENT_DIGESTS = 1_000

function digestOf(token: string): string | Promise<string> {
  const known = recentDigests.get(token)
  if (known) return known
  const digest = hashToken(token).then((hash) => hash.slice(HASH_PREFIX.length))
  // Bounded in count and in what one entry holds: long strings (JWTs, junk) are not kept.
  if (token.length <= 256) {
    if (recentDigests.size >= RECENT_DIGESTS) recentDigests.clear()
    recentDigests.set(token, digest)
    void digest.then(
      (value) => {
        if (recentDigests.get(token) === digest) recentDigests.set(token, value)
      },
      () => recentDigests.delete(token),
    )
  }
  return digest
}

function hex(bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0')
  return out
}

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}
