/**
 * @module Static API tokens: generated with high entropy, stored only as SHA-256 hashes.
 *
 * A token carries 256 random bits, so a fast hash is enough (no password stretching needed);
 * lookup hashes the presented token once and compares against every stored hash in constant time.
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
  readonly #entries: { digest: Uint8Array; principal: Principal }[]
  readonly #envToken: string | undefined
  /** The digest of `DOCKGATE_TOKEN`, once computed. */
  #envDigest: Uint8Array | undefined

  constructor(entries: readonly TokenEntry[], envToken?: string) {
    this.#entries = entries.map((entry) => ({
      digest: fromHex(entry.hash.slice(HASH_PREFIX.length)),
      principal: {
        id: principalId.token(entry.name),
        kind: 'token',
        scopes: new Set(entry.scopes),
        policy: entry.policy ?? DEFAULT_POLICY,
      },
    }))
    this.#envToken = envToken
  }

  get size(): number {
    return this.#entries.length + (this.#envToken ? 1 : 0)
  }

  authenticate(token: string): Promise<Principal | undefined> {
    const presented = recentDigests.get(token)
    // The usual case, every digest known already: decide now, without hashing or waiting.
    if (presented instanceof Uint8Array && (!this.#envToken || this.#envDigest)) {
      return Promise.resolve(this.#find(presented))
    }
    return this.#hashThenFind(token)
  }

  /** Decided as `authenticate` decides it, when every digest is known already. */
  knownPrincipal(token: string): Principal | undefined {
    const presented = recentDigests.get(token)
    if (presented instanceof Uint8Array && (!this.#envToken || this.#envDigest)) {
      return this.#find(presented)
    }
    return undefined
  }

  /** The token (or `DOCKGATE_TOKEN`) of that principal id, as it is configured now. */
  principalOf(issued: { id: string; kind: Principal['kind'] }): Promise<Principal | undefined> {
    if (issued.kind === 'env-token') {
      return Promise.resolve(
        this.#envToken && issued.id === ENV_PRINCIPAL.id ? ENV_PRINCIPAL : undefined,
      )
    }
    if (issued.kind !== 'token') return Promise.resolve(undefined)
    return Promise.resolve(
      this.#entries.find((entry) => entry.principal.id === issued.id)?.principal,
    )
  }

  async #hashThenFind(token: string): Promise<Principal | undefined> {
    const presented = await digestOf(token)
    if (this.#envToken) this.#envDigest ??= await digestOf(this.#envToken)
    return this.#find(presented)
  }

  #find(presented: Uint8Array): Principal | undefined {
    let found: Principal | undefined
    // Visit every entry whatever matches, so timing says nothing about which one did.
    for (const entry of this.#entries) {
      if (constantTimeEqual(presented, entry.digest)) found ??= entry.principal
    }
    if (this.#envDigest && constantTimeEqual(presented, this.#envDigest)) found ??= ENV_PRINCIPAL
    return found
  }
}

/** The principal behind `DOCKGATE_TOKEN`, for automation. */
const ENV_PRINCIPAL: Principal = {
  id: principalId.env(),
  kind: 'env-token',
  scopes: new Set(['admin']),
  policy: DEFAULT_POLICY,
}

/**
 * Digests of recently presented tokens: hashing with WebCrypto costs about 0.3 ms per request
 * on Node 20. Only the hashing is cached; every request still compares against every stored
 * hash in constant time, so nothing about the decision depends on the cache. An entry is the
 * digest itself once computed (so that a known token needs no await), its promise until then.
 */
const recentDigests = new Map<string, Uint8Array | Promise<Uint8Array>>()
const RECENT_DIGESTS = 1_000

function digestOf(token: string): Uint8Array | Promise<Uint8Array> {
  const known = recentDigests.get(token)
  if (known) return known
  const digest = hashToken(token).then((hash) => fromHex(hash.slice(HASH_PREFIX.length)))
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

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!
  return difference === 0
}

function hex(bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0')
  return out
}

function fromHex(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length >> 1)
  for (let i = 0; i < bytes.length; i++)
    bytes[i] = Number.parseInt(text.slice(i * 2, i * 2 + 2), 16)
  return bytes
}

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}
