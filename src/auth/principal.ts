/**
 * @module Who is calling, and what they may do.
 *
 * Every way of authenticating (config tokens, the automation token, and later JWTs) yields the
 * same `Principal`, so authorization never asks how the caller proved who it is.
 */
import { z } from '@hono/zod-openapi'
import type { Policy } from '../policy/policy.ts'

export const SCOPES = [
  'system:read',
  'containers:read',
  'containers:write',
  'logs:read',
  'events:read',
  'images:read',
  'exec',
  'admin',
] as const

export const ScopeSchema = z.enum(SCOPES)
export type Scope = z.infer<typeof ScopeSchema>

export interface Principal {
  /** Stable identity: owner label value, audit subject. */
  readonly id: string
  /** How it authenticated. */
  readonly kind: 'token' | 'env-token' | 'jwt'
  readonly scopes: ReadonlySet<Scope>
  readonly policy: Policy
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
