/**
 * @module The OpenAPI document as `/docs` shows it: each operation's required scopes as badges.
 *
 * The scopes are in each operation's bearer security requirement (`security: [{ Bearer:
 * ['containers:read'] }]`), which the renderer does not show for a bearer scheme; its `x-badges`
 * extension it does show, beside the operation's title.
 */

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

/** One entry of the renderer's `x-badges` operation extension. */
export interface Badge {
  name: string
  position: 'before' | 'after'
}

type JsonObject = { [key: string]: unknown }

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * One badge per security requirement that names scopes: a requirement needs all of its scopes
 * (joined with `+`), and any one requirement of the list is enough (one badge each).
 */
export function scopeBadges(security: unknown): Badge[] {
  if (!Array.isArray(security)) return []
  const badges: Badge[] = []
  for (const requirement of security) {
    if (!isObject(requirement)) continue
    const scopes = Object.values(requirement).flatMap((list) =>
      Array.isArray(list) ? list.filter((s): s is string => typeof s === 'string') : [],
    )
    if (scopes.length > 0) badges.push({ name: `scope: ${scopes.join(' + ')}`, position: 'after' })
  }
  return badges
}

/** A copy of the document whose operations carry their scope badges; the input is untouched. */
export function withScopeBadges<Document extends object>(document: Document): Document {
  // A JSON copy: what is served is JSON anyway.
  const copy: Document = JSON.parse(JSON.stringify(document))
  const paths = (copy as JsonObject).paths
  if (!isObject(paths)) return copy
  for (const pathItem of Object.values(paths)) {
    if (!isObject(pathItem)) continue
    for (const method of METHODS) {
      const operation = pathItem[method]
      if (!isObject(operation)) continue
      const badges = scopeBadges(operation.security ?? (copy as JsonObject).security)
      if (badges.length > 0) {
        const existing = Array.isArray(operation['x-badges']) ? operation['x-badges'] : []
        operation['x-badges'] = [...existing, ...badges]
      }
    }
  }
  return copy
}
