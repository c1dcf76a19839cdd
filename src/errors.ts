/**
 * @module The one error type of the gateway and its RFC 9457 rendering.
 *
 * Everything that goes wrong — validation, auth, the engine, the transport — ends as a
 * `ProblemError`, and the app's one error handler (`src/app.ts`) turns it into HTTP.
 */

/** Stable problem codes. The `type` URI of a problem is derived from its code. */
export type ProblemCode =
  | 'bad-request'
  | 'validation-failed'
  | 'malformed-json'
  | 'unsupported-media-type'
  | 'payload-too-large'
  | 'headers-too-large'
  | 'request-timeout'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'method-not-allowed'
  | 'conflict'
  | 'not-a-swarm-manager'
  | 'rate-limited'
  | 'engine-error'
  | 'engine-unavailable'
  | 'engine-timeout'
  | 'store-unavailable'
  | 'registry-denied'
  | 'registry-unavailable'
  | 'registry-timeout'
  | 'registry-error'
  | 'internal-error'
  | 'upgrade-required'
  | 'not-implemented'

const PROBLEM_TYPE_PREFIX = 'urn:dockgate:problem:'

const PROBLEM_TITLES: Record<ProblemCode, string> = {
  'bad-request': 'Bad request',
  'validation-failed': 'Request validation failed',
  'malformed-json': 'Malformed JSON body',
  'unsupported-media-type': 'Unsupported media type',
  'payload-too-large': 'Payload too large',
  'headers-too-large': 'Request header fields too large',
  'request-timeout': 'Request timeout',
  unauthorized: 'Authentication required',
  forbidden: 'Insufficient scope',
  'not-found': 'Not found',
  'method-not-allowed': 'Method not allowed',
  conflict: 'Conflict',
  'not-a-swarm-manager': 'Not a Swarm manager',
  'rate-limited': 'Too many requests',
  'engine-error': 'Docker Engine error',
  'engine-unavailable': 'Docker Engine unavailable',
  'engine-timeout': 'Docker Engine timed out',
  'store-unavailable': 'Shared state store unavailable',
  'registry-denied': 'The registry refused the credentials',
  'registry-unavailable': 'The registry cannot be reached',
  'registry-timeout': 'The registry did not answer in time',
  'registry-error': 'The registry failed during the pull',
  'internal-error': 'Internal error',
  'upgrade-required': 'Upgrade required',
  'not-implemented': 'Not implemented',
}

/** One invalid input, as reported in a `validation-failed` problem. */
export interface InvalidParam {
  /** Where the value came from and its path, e.g. `body.resources.memory` or `query.tail`. */
  name: string
  reason: string
}

export interface ProblemOptions {
  detail?: string
  headers?: Record<string, string>
  invalidParams?: InvalidParam[]
  cause?: unknown
}

export class ProblemError extends Error {
  readonly status: number
  readonly code: ProblemCode
  readonly detail: string | undefined
  readonly headers: Record<string, string>
  readonly invalidParams: InvalidParam[] | undefined

  constructor(status: number, code: ProblemCode, options: ProblemOptions = {}) {
    super(options.detail ?? PROBLEM_TITLES[code], { cause: options.cause })
    this.name = 'ProblemError'
    this.status = status
    this.code = code
    this.detail = options.detail
    this.headers = options.headers ?? {}
    this.invalidParams = options.invalidParams
  }
}

export const badRequest = (detail: string, invalidParams?: InvalidParam[]) =>
  new ProblemError(400, invalidParams ? 'validation-failed' : 'bad-request', {
    detail,
    invalidParams,
  })

export const notFound = (detail: string) => new ProblemError(404, 'not-found', { detail })

/** The JSON body of a problem response. */
export interface ProblemBody {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  requestId?: string
  invalidParams?: InvalidParam[]
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

export function problemBody(error: ProblemError, instance?: string, requestId?: string) {
  const body: ProblemBody = {
    type: `${PROBLEM_TYPE_PREFIX}${error.code}`,
    title: PROBLEM_TITLES[error.code],
    status: error.status,
  }
  if (error.detail !== undefined) body.detail = error.detail
  if (instance !== undefined) body.instance = instance
  if (requestId !== undefined) body.requestId = requestId
  if (error.invalidParams !== undefined) body.invalidParams = error.invalidParams
  return body
}
