/**
 * @module Who is calling, and what they may do.
 *
 * Every way of authenticating (config tokens, the automation token, and later JWTs) yields the
 * same `Principal`, so authorization never asks how the caller proved who it is.
 */
import { z } from 'zod'
import type { Policy } from './policy.ts'

export const SCOPES = [
  'system:read',
  'containers:read',
  'containers:write',
  'logs:read',
  'events:read',
  'images:read',
  /** Pull and delete images (under the policy's `images` patterns and the configured registries). */
  'images:write',
  'exec',
  'admin',
  /**
   * Read the Swarm's nodes (`GET /v1/nodes`) and their events. Last: a stream ticket carries
   * scopes as bits in this order, and a ticket issued by an older instance must keep its meaning.
   */
  'nodes:read',
] as const

export const ScopeSchema = z.enum(SCOPES)
export type Scope = z.infer<typeof ScopeSchema>

export interface Principal {
  /**
   * Stable identity: owner label value, audit subject, rate-limit key. Namespaced by how the
   * principal authenticated (see `principalId`), so no JWT can take a token's identity.
   */
  readonly id: string
  /** How it authenticated. */
  readonly kind: 'token' | 'env-token' | 'jwt'
  readonly scopes: ReadonlySet<Scope>
  readonly policy: Policy
  /**
   * Which credential of that id it authenticated with: a short fingerprint of the token's digest,
   * or of the key that verified the JWT. A stream ticket carries it, so that an instance judging
   * the ticket by its id alone tells a rotated credential (the same name, a new token or key)
   * from the one that asked for it.
   */
  readonly fingerprint?: string
}

/**
 * The credential a request came with, to be judged again under the rules in force later (a
 * config reload): its principal then, or undefined once it is no longer accepted. With `at`,
 * judged as of that time (a JWT's expiry) rather than now.
 */
export type Credential = (at?: Date) => Promise<Principal | undefined>

/** `admin` holds every scope. */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has(scope) || principal.scopes.has('admin')
}

/** Admins see and act on every container, and no image allowlist applies to them. */
export function isAdmin(principal: Principal): boolean {
  return principal.scopes.has('admin')
}

/**
 * Principal ids, one namespace per way of authenticating: a config token's bare name (token
 * names have no `:`, and the containers they own keep their labels), `jwt:<iss>:<sub>` for a
 * JWT, `env:admin` for `DOCKGATE_TOKEN`. `%` and `:` inside the issuer and subject are
 * percent-encoded, so two different (issuer, subject) pairs never read as one id.
 */
export const principalId = {
  token: (name: string) => name,
  jwt: (issuer: string | undefined, subject: string) =>
    `jwt:${escapeIdPart(issuer ?? '')}:${escapeIdPart(subject)}`,
  env: () => 'env:admin',
}

const escapeIdPart = (part: string) => part.replaceAll('%', '%25').replaceAll(':', '%3A')
