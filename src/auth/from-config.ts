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

export function authenticatorFromConfig(config: ConfigFile, env: AuthEnvironment): Authenticator {
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
