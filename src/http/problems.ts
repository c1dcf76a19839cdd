/**
 * @module The one mapping from anything thrown to a problem.
 */
import { HTTPException } from 'hono/http-exception'
import { EngineShapeError } from '../engine/types.ts'
import { ProblemError } from '../errors.ts'

export type ErrorLogger = (message: string, error: unknown) => void

/** The one mapping from anything thrown to a problem. */
export function toProblem(error: unknown, logError: ErrorLogger): ProblemError {
  if (error instanceof ProblemError) return error
  if (error instanceof HTTPException) return fromHttpException(error)
  if (error instanceof EngineShapeError) {
    logError('engine answer did not match', error)
    return new ProblemError(502, 'engine-error', { detail: error.message })
  }
  logError('unexpected error', error)
  return new ProblemError(500, 'internal-error', { detail: 'The gateway failed unexpectedly' })
}

/** Hono's own validators and middleware throw these with plain-text messages. */
function fromHttpException(error: HTTPException): ProblemError {
  switch (error.status) {
    case 400:
      return error.message.startsWith('Malformed JSON')
        ? new ProblemError(400, 'malformed-json', { detail: 'The request body is not valid JSON' })
        : new ProblemError(400, 'bad-request', { detail: error.message })
    case 413:
      return new ProblemError(413, 'payload-too-large')
    case 415:
      return new ProblemError(415, 'unsupported-media-type', {
        detail: 'The request body must be application/json',
      })
    default:
      return new ProblemError(
        error.status >= 500 ? 500 : 400,
        error.status >= 500 ? 'internal-error' : 'bad-request',
        {
          detail: error.message,
        },
      )
  }
}
