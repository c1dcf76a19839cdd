/**
 * @module The gateway's own marks on containers, and how it reads a container reference.
 */

/** Labels under this prefix are the gateway's own (ownership); clients may not set them. */
export const RESERVED_LABEL_PREFIX = 'dockgate.'
export const OWNER_LABEL = 'dockgate.owner'

/**
 * Label prefixes a client may not set, in any case: the gateway's own, and the namespaces Docker
 * reserves for its internal use (https://docs.docker.com/engine/manage-resources/labels/). The
 * engine puts some of those on what it makes itself, and the gateway reads them so: a container
 * with `com.docker.swarm.service.id` is counted as its service's task, not towards
 * `maxContainers` (policy/services.ts), so a client that could set it could hide containers from
 * its quota.
 */
export const RESERVED_LABEL_PREFIXES = [
  RESERVED_LABEL_PREFIX,
  'com.docker.',
  'io.docker.',
  'org.dockerproject.',
] as const

/** The reserved prefix a label key starts with, in any case; undefined for a client's own key. */
export function reservedPrefixOf(key: string): string | undefined {
  const lower = key.toLowerCase()
  return RESERVED_LABEL_PREFIXES.find((prefix) => lower.startsWith(prefix))
}

/**
 * References the gateway resolves as container ids (or id prefixes) only, never as names: the
 * engine would resolve a name first, so a container named like another's short id would shadow
 * it. Shorter hex references are resolved as the engine does (a name first).
 */
export const CONTAINER_ID_LIKE = /^[0-9a-f]{12,64}$/
