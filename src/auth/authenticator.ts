/**
 * @module What every way of authenticating provides (config tokens, the automation token, JWTs),
 * so the HTTP layer asks one interface and never how the caller proved who it is.
 */
import type { Principal, Scope } from '../domain/principal.ts'

/** Anything that can turn a presented bearer credential into a principal. */
export interface Authenticator {
  /**
   * The credential's principal, or undefined. With `at`, judged as of that time instead of now
   * (a JWT's expiry): how a credential accepted then is re-checked against rules changed since.
   */
  authenticate(token: string, options?: { at?: Date }): Promise<Principal | undefined>
  /**
   * The principal `authenticate(token)` would answer, when that is known at once (a config token
   * whose digest was computed before); undefined: ask `authenticate`. No cache of its own: the
   * same lookup, without a promise (a small request's CPU, bench phase 2).
   */
  knownPrincipal?(token: string): Principal | undefined
  /**
   * The principal now of one this authenticator accepted before, by its id (a stream ticket
   * redeemed on another instance, which never saw the credential): undefined when no credential
   * of that id is accepted now. A config token is judged as a request with it would be; a JWT
   * cannot be verified again without it: its principal (with `scopes`, which the JWT granted)
   * counts while its issuer is accepted, with the policy the config gives its `sub` now.
   */
  principalOf?(issued: {
    id: string
    kind: Principal['kind']
    scopes: ReadonlySet<Scope>
    /** The issuing principal's `fingerprint`: one of that id accepted now must be the same. */
    fingerprint?: string | undefined
  }): Promise<Principal | undefined>
}
