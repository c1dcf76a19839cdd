/**
 * @module The authenticator a config file describes: its tokens, `DOCKGATE_TOKEN`, and JWTs.
 */

import type { JSONWebKeySet } from 'jose'
import type { ConfigFile } from '../config.ts'
import type { Authenticator } from './authenticator.ts'
import { firstOf, jwtAuthenticator } from './jwt.ts'
import { TokenStore } from './tokens.ts'

export interface AuthEnvironment {
  /** `DOCKGATE_TOKEN`: an admin token for automation. */
  envToken?: string | undefined
  /** `DOCKGATE_JWT_SECRET`: enables HS256 JWTs with audience `dockgate`. */
  jwtSecret?: string | undefined
  /** The parsed `jwt.jwksFile`, read by the entry point. */
  jwks?: JSONWebKeySet | undefined
}

/**
 * The shortest HS256 secret taken, in bytes: a key as long as the hash (RFC 7518, 3.2). Scopes
 * come from the JWT, so a secret cracked offline from any JWT seen would mint admin tokens.
 */
export const MIN_JWT_SECRET_BYTES = 32

export function authenticatorFromConfig(config: ConfigFile, env: AuthEnvironment): Authenticator {
  if (env.jwtSecret !== undefined && byteLength(env.jwtSecret) < MIN_JWT_SECRET_BYTES) {
    throw new Error(
      `DOCKGATE_JWT_SECRET must be at least ${MIN_JWT_SECRET_BYTES} bytes long (RFC 7518, 3.2: as long as the HS256 hash)`,
    )
  }
  const jwt = jwtAuthenticator({
    secret: env.jwtSecret,
    jwks: env.jwks,
    jwksUrl: config.jwt?.jwksUrl,
    issuer: config.jwt?.issuer,
    audience: config.jwt?.audience,
    maxAgeSeconds: config.jwt?.maxAgeSeconds,
    policyOf: (subject) => config.principals[subject]?.policy,
  })
  return firstOf(new TokenStore(config.tokens, env.envToken), jwt)
}

const byteLength = (text: string) => new TextEncoder().encode(text).length

/** An authenticator whose rules can be swapped while requests run (config reload, revocation). */
export class SwappableAuthenticator implements Authenticator {
  #current: Authenticator

  constructor(initial: Authenticator) {
    this.#current = initial
  }

  replace(next: Authenticator): void {
    this.#current = next
  }

  authenticate(token: string, options?: { at?: Date }) {
    return this.#current.authenticate(token, options)
  }

  knownPrincipal(token: string) {
    return this.#current.knownPrincipal?.(token)
  }

  principalOf(issued: Parameters<NonNullable<Authenticator['principalOf']>>[0]) {
    return this.#current.principalOf?.(issued) ?? Promise.resolve(undefined)
  }
}
