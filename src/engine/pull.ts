/**
 * @module Pulling an image through the engine: the registry credentials it expects, its progress
 * stream read into per-layer and overall progress, and its failures in the caller's terms.
 *
 * The engine's words about a registry name hosts, URLs and its own internals: they are matched
 * here to decide the answer and otherwise only logged (docs/engine-notes.md#image-pull).
 */
import { ProblemError } from '../errors.ts'

/** Credentials for one registry, as the config file gives them (both or neither). */
export interface RegistryCredentials {
  username?: string | undefined
  password?: string | undefined
}

/**
 * The `X-Registry-Auth` header the engine reads credentials from: JSON, base64url with padding
 * (the engine decodes it with Go's `base64.URLEncoding`). UTF-8 passwords survive: the bytes are encoded.
 */
export function registryAuthHeader(
  access: RegistryCredentials,
  registry: string,
): string | undefined {
  if (access.username === undefined || access.password === undefined) return undefined
  const json = JSON.stringify({
    username: access.username,
    password: access.password,
    serveraddress: registry,
  })
  let binary = ''
  for (const byte of new TextEncoder().encode(json)) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_')
}

/** One layer as the pull reports it. */
export interface LayerProgress {
  id: string
  /** The engine's own word for where it is: `Waiting`, `Downloading`, `Extracting`, `Pull complete`, `Already exists`… */
  status: string
  /** Bytes downloaded so far, once the engine says (`Downloading`); the whole size once done. */
  current: number | null
  /** The layer's compressed size, once the engine says. */
  total: number | null
  done: boolean
}

export interface PullProgress {
  layers: LayerProgress[]
  overall: {
    layers: number
    layersDone: number
    /** Bytes downloaded of the layers whose size is known. */
    current: number
    /** Sum of the sizes known so far (grows while layers start). */
    total: number
  }
}

/** A record of the engine's pull stream, as far as the gateway reads it. */
interface PullRecord {
  status?: unknown
  id?: unknown
  progressDetail?: { current?: unknown; total?: unknown }
  error?: unknown
  errorDetail?: { message?: unknown }
}

const DONE = new Set(['Pull complete', 'Already exists'])
const DOWNLOADED = new Set(['Download complete', 'Verifying Checksum', 'Extracting'])

/**
 * Follows one pull's NDJSON records. Records with an `id` and a status other than the first
 * "Pulling from" line are layers; `Digest:` and `Status:` lines say how it ended.
 */
export class PullTracker {
  readonly #layers = new Map<string, LayerProgress>()
  digest: string | undefined
  /** `Status: Image is up to date for …`: nothing was downloaded. */
  upToDate = false
  /**
   * The `Status: …` record came: the engine writes it once the image is stored and tagged, the
   * last record of a pull that succeeded (the body ends some milliseconds later).
   */
  finished = false
  /** Bumped on every change, so a throttled writer knows whether there is news. */
  version = 0

  /** Takes one record; throws the pull's failure when the record is an in-band error. */
  take(record: unknown, ref: string): void {
    if (!record || typeof record !== 'object') return
    const { status, id, progressDetail, error, errorDetail } = record as PullRecord
    if (error !== undefined || errorDetail !== undefined) {
      const message = typeof errorDetail?.message === 'string' ? errorDetail.message : String(error)
      throw pullFailure(message, ref)
    }
    if (typeof status !== 'string') return
    if (status.startsWith('Digest: ')) {
      this.digest = status.slice('Digest: '.length).trim()
      return
    }
    if (status.startsWith('Status: ')) {
      this.upToDate = status.startsWith('Status: Image is up to date')
      this.finished = true
      return
    }
    if (typeof id !== 'string' || status.startsWith('Pulling from ')) return
    const layer = this.#layers.get(id) ?? {
      id,
      status,
      current: null,
      total: null,
      done: false,
    }
    layer.status = status
    const current = progressDetail?.current
    const total = progressDetail?.total
    if (status === 'Downloading' && typeof current === 'number') layer.current = current
    if (status === 'Downloading' && typeof total === 'number' && total > 0) layer.total = total
    if ((DOWNLOADED.has(status) || DONE.has(status)) && layer.total !== null)
      layer.current = layer.total
    layer.done = DONE.has(status)
    this.#layers.set(id, layer)
    this.version++
  }

  progress(): PullProgress {
    const layers = [...this.#layers.values()].map((layer) => ({ ...layer }))
    let current = 0
    let total = 0
    for (const layer of layers) {
      if (layer.total === null) continue
      total += layer.total
      current += layer.current ?? 0
    }
    return {
      layers,
      overall: {
        layers: layers.length,
        layersDone: layers.filter((layer) => layer.done).length,
        current,
        total,
      },
    }
  }
}

/**
 * A failed pull in the caller's terms, from the engine's message (a 404 or 500 before the
 * stream, or an in-band error record): its words go to no one.
 */
export function pullFailure(message: string, ref: string): ProblemError {
  const cause = new Error(message)
  if (/manifest unknown|not found|name unknown|does not exist/i.test(message)) {
    return new ProblemError(404, 'not-found', { detail: `No such image: ${ref}`, cause })
  }
  if (/unauthorized|authentication required|no basic auth credentials|denied/i.test(message)) {
    return new ProblemError(403, 'registry-denied', {
      detail: `The registry refused the credentials this gateway has for ${ref}`,
      cause,
    })
  }
  if (/unknown blob|blob unknown|unexpected EOF|digest|verification failed/i.test(message)) {
    // The registry listed a layer and then did not serve it whole: its failure, not the engine's.
    return new ProblemError(502, 'registry-error', {
      detail: `The registry of ${ref} failed during the pull`,
      cause,
    })
  }
  if (/timeout|deadline exceeded/i.test(message)) {
    return new ProblemError(504, 'registry-timeout', {
      detail: `The registry of ${ref} did not answer in time`,
      cause,
    })
  }
  if (
    /connection refused|no such host|dial tcp|connection reset|EOF|server gave HTTP response/i.test(
      message,
    )
  ) {
    return new ProblemError(502, 'registry-unavailable', {
      detail: `The registry of ${ref} cannot be reached`,
      cause,
    })
  }
  return new ProblemError(502, 'engine-error', {
    detail: `The Docker Engine failed to pull ${ref}`,
    cause,
  })
}
