/**
 * @module Node's own answers to requests it cannot parse, as problems like every other answer.
 *
 * Node answers a request it cannot parse (bad syntax, headers over `maxHeaderSize`, a request
 * that timed out) itself, with a bare status line and no body, before the app sees anything.
 * With a `clientError` listener that answer is ours to write: the same status, an
 * `application/problem+json` body, and the connection closed, as Node would have.
 */
import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { PROBLEM_CONTENT_TYPE, type ProblemCode, ProblemError, problemBody } from '../errors.ts'

interface ClientError extends Error {
  code?: string
}

/** Node's error codes and what it would have answered. */
const ANSWERS: Record<
  string,
  { status: number; reason: string; code: ProblemCode; detail: string }
> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    reason: 'Request Header Fields Too Large',
    code: 'headers-too-large',
    detail: 'The request line and headers are limited to 64 KiB',
  },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: {
    status: 413,
    reason: 'Payload Too Large',
    code: 'payload-too-large',
    detail: 'The chunk extensions of the request body are too large',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    reason: 'Request Timeout',
    code: 'request-timeout',
    detail: 'The request did not arrive in time',
  },
}

const MALFORMED = {
  status: 400,
  reason: 'Bad Request',
  code: 'bad-request',
  detail: 'The request is not valid HTTP/1.1',
} as const

/** The raw HTTP/1.1 answer to a request Node could not take. */
function clientErrorAnswer(error: ClientError): string {
  const answer = (error.code && ANSWERS[error.code]) || MALFORMED
  const body = JSON.stringify(
    problemBody(new ProblemError(answer.status, answer.code, { detail: answer.detail })),
  )
  return [
    `HTTP/1.1 ${answer.status} ${answer.reason}`,
    `Content-Type: ${PROBLEM_CONTENT_TYPE}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n')
}

export function answerClientErrorsAsProblems(server: Server) {
  server.on('clientError', (error: ClientError, socket: Duplex) => {
    // A client that went away, or a connection with an answer already under way, gets nothing.
    const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    if (error.code === 'ECONNRESET' || !socket.writable || busy?.headersSent) {
      socket.destroy()
      return
    }
    socket.end(clientErrorAnswer(error))
  })
}
