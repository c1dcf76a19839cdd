/**
 * @module What every way of authenticating provides (config tokens, the automation token, JWTs),
 * so the HTTP layer asks one interface and never how the caller proved who it is.
 */
import type { Principal } from '../domain/principal.ts'

/** Anything that can turn a presented bearer credential into a principal. */
export interface Authenticator {
  /**
   * The credential's principal, or undefined. With `at`, judged as of that time instead of now
   * (a JWT's expiry): how a credential accepted then is re-checked against rules changed since.
   */
  authenticate(token: string, options?: { at?: Date }): Promise<Principal | undefined>
}
