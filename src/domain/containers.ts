/**
 * @module The gateway's own marks on containers, and how it reads a container reference.
 */

/** Labels under this prefix are the gateway's own (ownership); clients may not set them. */
export const RESERVED_LABEL_PREFIX = 'dockgate.'
export const OWNER_LABEL = 'dockgate.owner'

/**
 * References the gateway resolves as container ids (or id prefixes) only, never as names: the
 * engine would resolve a name first, so a container named like another's short id would shadow
 * it. Shorter hex references are resolved as the engine does (a name first).
 */
export const CONTAINER_ID_LIKE = /^[0-9a-f]{12,64}$/
