/**
 * @module Image references as a pull or a delete names them, and what a policy allows of them.
 *
 * The reference grammar itself is checked by the route schema (`ImageRef`); this reads an already
 * valid reference the way the engine does.
 */
import { globMatches } from './policy.ts'
import { isAdmin, type Principal } from './principal.ts'

/** Docker Hub, as Docker names it in a normalized reference and in credentials. */
export const DOCKER_HUB = 'docker.io'

export interface ParsedImageRef {
  /** The registry host the engine would pull from (`docker.io` for a bare `busybox`). */
  registry: string
  /** Everything before the tag or digest, as given (`127.0.0.1:5000/team/app`). */
  repository: string
  tag: string | undefined
  digest: string | undefined
}

/** Splits a valid reference (not an image id) into registry, repository, tag and digest. */
export function parseImageRef(ref: string): ParsedImageRef {
  const at = ref.indexOf('@')
  const digest = at === -1 ? undefined : ref.slice(at + 1)
  const named = at === -1 ? ref : ref.slice(0, at)
  // A tag's colon comes after the last slash; a colon before it is the registry's port.
  const colon = named.lastIndexOf(':')
  const hasTag = colon > named.lastIndexOf('/')
  const repository = hasTag ? named.slice(0, colon) : named
  const tag = hasTag ? named.slice(colon + 1) : undefined
  const slash = repository.indexOf('/')
  const first = slash === -1 ? '' : repository.slice(0, slash)
  // The first component is a registry host if it has a dot or a port, or is localhost; otherwise
  // the name is on Docker Hub (the grammar in `ImageRef` says why an upper-case one needs either).
  const isHost = first !== '' && (/[.:]/.test(first) || first === 'localhost')
  return { registry: isHost ? first : DOCKER_HUB, repository, tag, digest }
}

/**
 * The reference the engine pulls for `ref`: `:latest` added when it names neither a tag nor a
 * digest, as the engine itself does.
 */
export function pulledRef(ref: string): string {
  const { tag, digest } = parseImageRef(ref)
  return tag === undefined && digest === undefined ? `${ref}:latest` : ref
}

/**
 * Whether the principal's policy allows this reference: one of its `images` patterns matches it as
 * given, or with the `:latest` the engine adds (the same matcher a create's image goes through).
 * A digest is part of the reference: a pattern that allows `app:*` does not allow `app@sha256:…`.
 * Admins may use any image.
 */
export function policyAllowsRef(principal: Principal, ref: string): boolean {
  if (isAdmin(principal)) return true
  const names = new Set([ref, pulledRef(ref)])
  return principal.policy.images.some((pattern) =>
    [...names].some((name) => globMatches(pattern, name)),
  )
}
