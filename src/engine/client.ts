/**
 * @module A small Docker Engine client over the transport port.
 *
 * It negotiates the API version once, pins every path to `/v<version>/`, bounds ordinary calls
 * with a timeout, passes the caller's abort signal upstream and turns every failure into a
 * `ProblemError`, so routes only ever see engine data or a problem they can rethrow.
 */
import { ProblemError } from '../errors.ts'
import {
  ENGINE_ORIGIN,
  type EngineCallOptions,
  type EngineConnection,
  type EngineTransport,
  type UpgradeOptions,
} from './transport.ts'
import { MIN_API_VERSION, negotiateApiVersion } from './version.ts'

export type QueryValue = string | number | boolean | undefined
export type Query = Record<string, QueryValue>

export interface EngineRequestOptions {
  query?: Query
  /** Sent as JSON. */
  body?: unknown
  /** More request headers (`X-Registry-Auth`). */
  headers?: Record<string, string>
  /** The incoming request's signal: when the client leaves, the engine call is cancelled. */
  signal?: AbortSignal
  /** Milliseconds for the whole call including the body; 0 for streams that run indefinitely. */
  timeoutMs?: number
  /** Non-2xx statuses that are answers rather than errors, e.g. 304 on start. */
  accept?: readonly number[]
  /** The engine may hold the call for longer than a moment: see `EngineCallOptions`. */
  held?: boolean
  /** The caller takes the body chunk by chunk where the transport can: see `EngineCallOptions`. */
  push?: boolean
}

export interface EngineClientOptions {
  /** Default bound for ordinary calls. */
  timeoutMs?: number
  /** Bound for `/_ping`, used by readiness and version negotiation. */
  pingTimeoutMs?: number
  /** Seconds a client is told to wait when the engine can't be reached. */
  retryAfterSeconds?: number
  /** Where engine failures that clients never see in full are reported. */
  onEngineError?: (detail: {
    method: string
    path: string
    status?: number
    message: string
  }) => void
}

export class EngineClient {
  readonly transport: EngineTransport
  readonly #timeoutMs: number
  readonly #pingTimeoutMs: number
  readonly #retryAfter: string
  readonly #onEngineError: NonNullable<EngineClientOptions['onEngineError']>
  #version: Promise<string> | undefined

  constructor(transport: EngineTransport, options: EngineClientOptions = {}) {
    this.transport = transport
    this.#timeoutMs = options.timeoutMs ?? 30_000
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 3_000
    this.#retryAfter = String(options.retryAfterSeconds ?? 5)
    this.#onEngineError = options.onEngineError ?? (() => {})
  }

  /** The negotiated API version; asked of the engine once, asked again after a failure. */
  apiVersion(signal?: AbortSignal): Promise<string> {
    if (!this.#version) {
      this.#version = this.#negotiate(signal)
      this.#version.catch(() => {
        this.#version = undefined
      })
    }
    return this.#version
  }

  /** `GET /_ping`, unversioned: answers whether the engine is there, and its API version. */
  async ping(signal?: AbortSignal): Promise<{ apiVersion: string }> {
    const response = await this.#send('GET', '/_ping', { signal, timeoutMs: this.#pingTimeoutMs })
    await response.body?.cancel()
    return { apiVersion: response.headers.get('api-version') ?? '' }
  }

  async #negotiate(signal?: AbortSignal): Promise<string> {
    const { apiVersion } = await this.ping(signal)
    const version = negotiateApiVersion(apiVersion)
    if (!version) {
      this.#onEngineError({ method: 'GET', path: '/_ping', message: `API ${apiVersion}` })
      throw new ProblemError(502, 'engine-error', {
        detail: `The Docker Engine speaks API ${apiVersion || '(unknown)'}; dockgate needs ${MIN_API_VERSION} or newer`,
      })
    }
    return version
  }

  /** A versioned call; the response is returned unread (a stream) when its status is accepted. */
  async request(
    method: string,
    path: string,
    options: EngineRequestOptions = {},
  ): Promise<Response> {
    const version = await this.apiVersion(options.signal)
    return this.#send(method, `/v${version}${path}`, options)
  }

  /** A versioned call whose JSON answer is returned; `undefined` for empty bodies (204, 304). */
  async json(method: string, path: string, options: EngineRequestOptions = {}): Promise<unknown> {
    const response = await this.request(method, path, options)
    const text = await this.#readText(response, method, path, options.signal)
    if (text === '') return undefined
    try {
      return JSON.parse(text)
    } catch (cause) {
      this.#onEngineError({ method, path, status: response.status, message: 'invalid JSON' })
      throw new ProblemError(502, 'engine-error', {
        detail: 'The Docker Engine sent a malformed answer',
        cause,
      })
    }
  }

  /** The status of a call whose body does not matter (start, stop, delete). */
  async status(method: string, path: string, options: EngineRequestOptions = {}): Promise<number> {
    const response = await this.request(method, path, options)
    await this.#readText(response, method, path, options.signal)
    return response.status
  }

  /** Whether {@link upgrade} can open a connection here (not on the edge: fetch only). */
  get canUpgrade(): boolean {
    return this.transport.upgrade !== undefined
  }

  /**
   * A versioned call the engine takes over after `101 UPGRADED` (an exec's session, or its
   * output): the connection, or the engine's refusal as a problem as any call's. 501 where the
   * transport cannot hand out a raw connection.
   */
  async upgrade(
    method: string,
    path: string,
    options: Pick<EngineRequestOptions, 'body' | 'signal'> & UpgradeOptions = {},
  ): Promise<EngineConnection> {
    const upgrade = this.transport.upgrade?.bind(this.transport)
    if (!upgrade) {
      throw new ProblemError(501, 'not-implemented', {
        detail: 'This runtime cannot open an interactive session with the Docker Engine',
      })
    }
    const version = await this.apiVersion(options.signal)
    const versioned = `/v${version}${path}`
    const request = new Request(engineUrl(versioned, undefined), {
      method,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      headers: { 'content-type': 'application/json' },
    })
    try {
      return await upgrade(request, { readAheadBytes: options.readAheadBytes, push: options.push })
    } catch (cause) {
      if (cause instanceof Response) throw await this.#engineError(cause, method, versioned)
      throw this.#failure(cause, method, versioned, options.signal)
    }
  }

  async #readText(response: Response, method: string, path: string, signal?: AbortSignal) {
    try {
      return await response.text()
    } catch (cause) {
      throw this.#failure(cause, method, path, signal)
    }
  }

  async #send(method: string, path: string, options: EngineRequestOptions): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined
    const signals = [options.signal, timeout].filter((s): s is AbortSignal => s !== undefined)
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0]
    // `AbortSignal.any` holds its sources weakly, and a timeout's timer holds its signal weakly:
    // once this call returns, a garbage collection could take the timeout, and a held call's body
    // (a pull, a stream) then never timed out (seen in test/routes/images-pull.test.ts; Node 20).
    // A listener on the combined signal keeps the timeout as long as the call uses that signal.
    if (timeout && signal !== timeout) signal?.addEventListener('abort', () => void timeout)
    const init: RequestInit = { method, signal }
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body)
      init.headers = { 'content-type': 'application/json' }
    }
    if (options.headers) init.headers = { ...init.headers, ...options.headers }
    let response: Response
    try {
      const request = new Request(engineUrl(path, options.query), init)
      response = await this.transport.fetch(request, callOptions(options))
    } catch (cause) {
      throw this.#failure(cause, method, path, options.signal)
    }
    if (response.ok || options.accept?.includes(response.status)) return response
    throw await this.#engineError(response, method, path)
  }

  /** `callerSignal` aborted means the client left: nothing to answer, nothing to report. */
  #failure(cause: unknown, method: string, path: string, callerSignal: AbortSignal | undefined) {
    if (cause instanceof ProblemError || callerSignal?.aborted) return cause
    // The timeout's reason is a TimeoutError, whether it hit before the headers or in the body.
    if (cause instanceof Error && cause.name === 'TimeoutError') {
      this.#onEngineError({ method, path, message: 'timed out' })
      return new ProblemError(504, 'engine-timeout', {
        detail: 'The Docker Engine did not answer in time',
        cause,
      })
    }
    this.#onEngineError({ method, path, message: describe(cause) })
    return new ProblemError(503, 'engine-unavailable', {
      detail: 'The Docker Engine cannot be reached',
      headers: { 'retry-after': this.#retryAfter },
      cause,
    })
  }

  async #engineError(response: Response, method: string, path: string): Promise<ProblemError> {
    const message = await engineMessage(response)
    const status = response.status
    // API 1.41 answers 500 to an id prefix several containers share. It names no one container,
    // like a missing one, and must read the same: the others may be anyone's (policy/access.ts).
    const ambiguous = AMBIGUOUS_PREFIX.exec(message)
    if (status === 500 && ambiguous) {
      return new ProblemError(404, 'not-found', { detail: `No such container: ${ambiguous[1]}` })
    }
    if (status === 404 && OWN_REF_MISSING.test(message)) {
      // It names only what the gateway asked for: the caller's own reference.
      return new EngineRefusal(404, 'not-found', message)
    }
    if (status === 503 && NOT_A_MANAGER.test(message)) {
      // Said in fixed words: the engine's own name the CLI commands to run.
      return new ProblemError(409, 'not-a-swarm-manager', {
        detail:
          'The Docker Engine is not a Swarm manager: services, tasks and nodes are only available on a manager',
      })
    }
    if (status === 400 || status === 404 || status === 409) {
      // A 4xx text can name another tenant's container (a name conflict gives its full id) or
      // runc internals (a failed start): it goes to the log, the caller gets a fixed detail
      // (which routes may word in the caller's terms, see `refusedAs`).
      this.#onEngineError({ method, path, status, message })
      return new EngineRefusal(status, REFUSAL_CODES[status], REFUSAL_DETAILS[status])
    }
    // The engine's 5xx text can name host paths and internals: log it, never echo it.
    this.#onEngineError({ method, path, status, message })
    return new ProblemError(502, 'engine-error', {
      detail: `The Docker Engine failed to handle the request (status ${status})`,
    })
  }
}

const HELD: EngineCallOptions = { held: true }
const HELD_PUSHED: EngineCallOptions = { held: true, push: true }
const PUSHED: EngineCallOptions = { push: true }

/** The transport's options of a call, shared: most calls have none. */
function callOptions(options: EngineRequestOptions): EngineCallOptions | undefined {
  if (options.push) return options.held ? HELD_PUSHED : PUSHED
  return options.held ? HELD : undefined
}

/** API 1.41's 503 on a cluster call to an engine outside a swarm, or to a worker. */
const NOT_A_MANAGER = /^This node is not a swarm manager/
const AMBIGUOUS_PREFIX = /^Multiple IDs found with provided prefix: (.*)$/
const OWN_REF_MISSING = /^No such (?:container|image): \S+$/

const REFUSAL_CODES = { 400: 'bad-request', 404: 'not-found', 409: 'conflict' } as const
const REFUSAL_DETAILS = {
  400: 'The Docker Engine refused the request',
  404: 'Not found',
  409: 'The request conflicts with the current state of the container',
} as const

/** The engine refused a call (a 4xx); its own words are in the server log only. */
export class EngineRefusal extends ProblemError {
  constructor(
    status: 400 | 404 | 409,
    code: 'bad-request' | 'not-found' | 'conflict',
    detail: string,
  ) {
    super(status, code, { detail })
    this.name = 'EngineRefusal'
  }
}

/**
 * Rewords the engine's refusals of one call in the caller's terms, by status (use with `.catch`);
 * anything else is rethrown as it is.
 */
export function refusedAs(details: Partial<Record<400 | 409, string>>) {
  const reworded: Partial<Record<number, string>> = details
  return (error: unknown): never => {
    const detail = error instanceof EngineRefusal ? reworded[error.status] : undefined
    if (detail === undefined || !(error instanceof EngineRefusal)) throw error
    throw new ProblemError(error.status, error.code, { detail, cause: error })
  }
}

function engineUrl(path: string, query: Query | undefined): string {
  if (!query) return ENGINE_ORIGIN + path
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, String(value))
  }
  const search = params.toString()
  return ENGINE_ORIGIN + path + (search ? `?${search}` : '')
}

async function engineMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '')
  try {
    const body: unknown = JSON.parse(text)
    if (body && typeof body === 'object' && 'message' in body && typeof body.message === 'string') {
      return body.message
    }
  } catch {
    // Some engine errors (an unsupported API version) are plain text.
  }
  return text.trim().slice(0, 500) || `status ${response.status}`
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
  return `${error.message}${cause}`
}
