/** The Engine API versions this gateway speaks, as the docker CLI negotiates them. */
export const MIN_API_VERSION = '1.41'
/** The newest version the curated mappings were written for; a newer engine is spoken to at this one. */
const MAX_API_VERSION = '1.47'

export function compareApiVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number)
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number)
  return aMajor - bMajor || aMinor - bMinor
}

/** min(server, MAX_API_VERSION), or undefined when the server is older than MIN_API_VERSION. */
export function negotiateApiVersion(serverVersion: string): string | undefined {
  if (!/^\d+\.\d+$/.test(serverVersion)) return undefined
  if (compareApiVersions(serverVersion, MIN_API_VERSION) < 0) return undefined
  return compareApiVersions(serverVersion, MAX_API_VERSION) > 0 ? MAX_API_VERSION : serverVersion
}
