/**
 * @module Node transports: undici over a Unix socket, TCP, or TLS with client certificates.
 *
 * Ordinary calls share an undici `Agent` with a bounded pool. The calls the engine may hold (a
 * followed log, a stats stream, the events stream, a wait, a stop or restart waiting out its
 * timeout, a log read, a stats snapshot: their callers declare them `held`, by the Engine API's
 * own rules) keep their connection for as long as that lasts: in the
 * shared pool, as many of them as it has connections, from one client, would leave every other
 * client's ordinary calls queued until they timed out. So each held call gets a connection of
 * its own, opened for it and closed when it is over; how many there are is bounded by the
 * gateway's per-client limits (event streams, requests in progress), not by a pool, and the pool
 * only ever holds calls the engine answers at once. `bodyTimeout: 0` because streams stay quiet
 * for as long as they like; ordinary calls are bounded by the engine client's own timeout. A held
 * call whose body is pushed (the event hub's upstream) skips undici: it is read off its socket
 * directly (`requestPushed`).
 */
import { readFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { Agent, Client, type Dispatcher, fetch as undiciFetch } from 'undici'
import { ENGINE_ORIGIN, type EngineTransport } from '../engine/transport.ts'
import { ChunkedDecoder } from '../streams/chunked.ts'
import { PushedByteStream } from '../streams/pushed.ts'
import { describeTarget, type EngineTarget } from './docker-host.ts'
import { readsIntoSlabs } from './node-reads.ts'
import { upgradeSocket } from './node-upgrade.ts'
import { type AnswerHead, concat, parseAnswerHead, requestBytes } from './upgrade.ts'

export interface NodeTransportOptions {
  /** Upper bound on pooled connections per origin for ordinary calls (not for held ones). */
  connections?: number
}

const liveRequests = new WeakMap<object, Request>()

export function createNodeTransport(
  target: EngineTarget,
  options: NodeTransportOptions = {},
): EngineTransport {
  const connect = connectOptions(target)
  const ordinary = new Agent({
    bodyTimeout: 0,
    headersTimeout: 0,
    connections: options.connections ?? 64,
    connect,
  })
  const origin = target.kind === 'unix' ? ENGINE_ORIGIN : target.origin
  let closed: Promise<void> | undefined
  return {
    description: describeTarget(target),
    async fetch(request, options) {
      const path = request.url.slice(ENGINE_ORIGIN.length)
      const body = request.body ? await request.arrayBuffer() : undefined
      if (options?.held && options.push) return requestPushed(target, connect, path, request, body)
      const dispatcher = options?.held ? connectionForOneCall(origin, connect) : ordinary
      if (options?.push) return dispatchPushed(dispatcher, origin, path, request, body)
      const response = await undiciFetch(origin + path, {
        method: request.method,
        headers: Object.fromEntries(request.headers),
        body,
        signal: request.signal,
        dispatcher,
      })
      // Node's Request follows its caller's abort signal only while the Request object lives
      // (nodejs/undici#1926): keep it alive as long as its body can still be read, or a client
      // that leaves could no longer cancel a long engine stream.
      if (response.body) liveRequests.set(response.body, request)
      // undici's Response is structurally a Web Response; the core only uses the standard surface.
      return response as unknown as Response
    },
    async upgrade(request, options) {
      // An exec's output (pushed) is read into slabs; TLS reads as before (its own buffers)
      const slabs = options?.push === true && target.kind !== 'tls'
      return upgradeSocket(await openSocket(target, connect, slabs), request, options)
    },
    close() {
      closed ??= ordinary.close()
      return closed
    },
  }
}

/** Statuses whose answer has no body (of the Fetch standard's null body statuses, the final ones). */
const NULL_BODY = new Set([204, 205, 304])

/**
 * The call through undici's dispatcher rather than its `fetch`: the body is a
 * {@link PushedByteStream} fed from undici's own data callback, which a caller may take chunk by
 * chunk in that callback. `fetch` hands each chunk through a Node stream, its async iterator and a
 * Web stream first (src/streams/pushed.ts has the figures). Engine answers are never encoded (no
 * `accept-encoding` is sent), so there is nothing to decompress.
 */
function dispatchPushed(
  dispatcher: Dispatcher,
  origin: string,
  path: string,
  request: Request,
  body: ArrayBuffer | undefined,
): Promise<Response> {
  const signal = request.signal
  return new Promise<Response>((resolve, reject) => {
    let stream: PushedByteStream | undefined
    let call: Dispatcher.DispatchController | undefined
    const onAbort = () => call?.abort(abortError(signal.reason))
    const done = () => signal.removeEventListener('abort', onAbort)
    if (signal.aborted) return reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    dispatcher.dispatch(
      {
        origin,
        path,
        method: request.method as Dispatcher.HttpMethod,
        headers: Object.fromEntries(request.headers),
        body: body === undefined ? null : new Uint8Array(body),
      },
      {
        onRequestStart(controller) {
          call = controller
          // Aborted while the call waited for its connection.
          if (signal.aborted) onAbort()
        },
        onResponseStart(controller, status, headers, statusText) {
          const pushed = NULL_BODY.has(status)
            ? undefined
            : new PushedByteStream({
                pause: () => controller.pause(),
                resume: () => controller.resume(),
                cancel: (reason) => controller.abort(abortError(reason)),
              })
          stream = pushed
          const response = new Response(pushed ?? null, {
            status,
            statusText: statusText ?? '',
            headers: headersOf(headers),
          })
          // As for fetch's answers below: the Request keeps its signal following the caller's.
          if (pushed) liveRequests.set(pushed, request)
          resolve(response)
        },
        onResponseData(_controller, chunk) {
          stream?.push(chunk)
        },
        onResponseEnd() {
          done()
          stream?.close()
        },
        onResponseError(_controller, error) {
          done()
          if (stream) stream.error(error)
          else reject(error)
        },
      },
    )
  })
}

/**
 * A held call whose caller takes the body as it comes (the event hub's upstream), read straight
 * off a socket of its own, as an upgraded call is (node-upgrade.ts): the answer head parsed
 * once, then each read's bytes decoded (chunked, a length, or up to the close) and handed to the
 * body in the socket's own `'data'` callback. Through undici each chunk waited for the socket's
 * `readable` on a `nextTick`, then came back from its WebAssembly parser through four handler
 * layers; through Node's HTTP client, two `Readable`s and its parser's callbacks (bench/README.md,
 * "One subscriber's latency, fifth look", has the figures of all three).
 */
function requestPushed(
  target: EngineTarget,
  connect: ConnectOptions,
  path: string,
  request: Request,
  body: ArrayBuffer | undefined,
): Promise<Response> {
  const signal = request.signal
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<Response>((resolve, reject) => {
    let socket: Socket | undefined
    let stream: PushedByteStream | undefined
    let answered = false
    let endsAtClose = false
    let over = false
    const onAbort = () => fail(abortError(signal.reason))
    signal.addEventListener('abort', onAbort, { once: true })
    const finish = () => {
      over = true
      signal.removeEventListener('abort', onAbort)
      socket?.destroy()
    }
    const fail = (error: unknown) => {
      if (over) return
      finish()
      if (stream) stream.error(error)
      else if (!answered) reject(error)
    }
    const answer = (head: AnswerHead): ((bytes: Uint8Array) => void) | undefined => {
      const framing = bodyFraming(request.method, head)
      answered = true
      endsAtClose = framing?.endsAtClose === true
      const pushed =
        framing === undefined
          ? undefined
          : new PushedByteStream({
              pause: () => socket?.pause(),
              resume: () => socket?.resume(),
              cancel: () => finish(),
            })
      stream = pushed
      if (pushed) liveRequests.set(pushed, request)
      resolve(
        new Response(pushed ?? null, {
          status: head.status,
          statusText: head.statusText,
          headers: head.responseHeaders,
        }),
      )
      if (!pushed || !framing) {
        finish()
        return undefined
      }
      const complete = () => {
        finish()
        pushed.close()
      }
      return (bytes) => {
        if (framing.take(bytes, (piece) => pushed.push(piece))) complete()
      }
    }
    openSocket(target, connect).then((opened) => {
      socket = opened
      if (over) return opened.destroy()
      let head: Uint8Array = new Uint8Array(0)
      let receive: ((bytes: Uint8Array) => void) | undefined
      opened.on('data', (chunk: Uint8Array) => {
        try {
          if (receive) return receive(chunk)
          head = head.length === 0 ? chunk : concat([head, chunk])
          const parsed = parseAnswerHead(head)
          if (!parsed) return
          receive = answer(parsed)
          if (receive && parsed.rest.length > 0) receive(parsed.rest)
        } catch (error) {
          fail(error)
        }
      })
      opened.on('error', fail)
      // Only a body read up to the close ends there; any other is cut off.
      opened.on('end', () => {
        if (stream && !over && endsAtClose) {
          finish()
          stream.close()
        } else fail(new TypeError('The engine closed the connection before its answer ended'))
      })
      opened.on('close', () => fail(new TypeError('The engine connection closed')))
      opened.write(closingRequestBytes(request, path, body))
    }, fail)
  })
}

/** How a body is delimited: `take` hands over its bytes and answers whether it is complete. */
interface BodyFraming {
  take(bytes: Uint8Array, emit: (piece: Uint8Array) => void): boolean
  endsAtClose?: boolean
}

/** How the body of an answer is delimited; undefined when it has none. */
function bodyFraming(method: string, head: AnswerHead): BodyFraming | undefined {
  if (method === 'HEAD' || NULL_BODY.has(head.status) || head.status < 200) return undefined
  const headers = head.responseHeaders
  if (/(?:^|,)\s*chunked\s*$/i.test(headers.get('transfer-encoding') ?? '')) {
    const chunked = new ChunkedDecoder()
    return { take: (bytes, emit) => chunked.push(bytes, emit) }
  }
  const length = headers.get('content-length')
  if (length !== null) {
    if (!/^\d+$/.test(length.trim())) throw new TypeError('The engine sent a bad content-length')
    let left = Number(length)
    if (left === 0) return { take: () => true }
    return {
      take: (bytes, emit) => {
        const piece = bytes.length > left ? bytes.subarray(0, left) : bytes
        left -= piece.length
        emit(piece)
        return left === 0
      },
    }
  }
  // Neither chunked nor of a length: the body ends when the engine closes the connection.
  return {
    take: (bytes, emit) => {
      emit(bytes)
      return false
    },
    endsAtClose: true,
  }
}

/** The request as HTTP/1.1 bytes: head and body, on a connection closed after the answer. */
function closingRequestBytes(request: Request, path: string, body: ArrayBuffer | undefined) {
  const headers = new Headers(request.headers)
  headers.set('host', 'docker')
  headers.set('connection', 'close')
  if (body === undefined) headers.delete('content-length')
  else headers.set('content-length', String(body.byteLength))
  return requestBytes(request.method, path, headers, new Uint8Array(body ?? new ArrayBuffer(0)))
}

/** undici aborts with an `Error`; a signal's reason may be anything. */
function abortError(reason: unknown): Error {
  return reason instanceof Error ? reason : new DOMException('The call was aborted', 'AbortError')
}

function headersOf(headers: Record<string, string | string[] | undefined>): Headers {
  const result = new Headers()
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const one of value) result.append(name, one)
    else if (value !== undefined) result.append(name, value)
  }
  return result
}

/**
 * A connection of its own to the engine: for a call it takes over (an exec), or a pushed held
 * call. With `slabs` (plain sockets only) its reads land in slabs (see {@link readsIntoSlabs}).
 */
function openSocket(target: EngineTarget, options: ConnectOptions, slabs = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket
    const onread = slabs ? readsIntoSlabs(() => socket) : undefined
    if (target.kind === 'unix') socket = netConnect({ path: target.socketPath, onread })
    else {
      const url = new URL(target.origin)
      const host = url.hostname.replace(/^\[|\]$/g, '')
      const port = Number(url.port || (target.kind === 'tls' ? 2376 : 2375))
      socket =
        target.kind === 'tls'
          ? tlsConnect()({ host, port, ...options, servername: isIp(host) ? undefined : host })
          : netConnect({ host, port, onread })
    }
    const ready = target.kind === 'tls' ? 'secureConnect' : 'connect'
    socket.once(ready, () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/**
 * `node:tls` only for an engine reached over TLS: a gateway on a Unix socket or plain TCP never
 * loads it (~2 ms of a cold start's CPU with `ws`'s, bench `cold`; bench/README.md, "Cold start,
 * third session"). undici loads it itself, on its first TLS connection.
 */
const tlsConnect = () => process.getBuiltinModule('node:tls').connect

const isIp = (host: string) => /^[\d.]+$/.test(host) || host.includes(':')

/**
 * A connection for one call, closed once that call is over: its answer read to the end, or the
 * call cancelled (also before the engine answered). Not pooled: a pool would keep the idle
 * sockets of past follows, and a connect (a handshake on TLS) is small against a follow's life.
 */
function connectionForOneCall(origin: string, connect: ConnectOptions): Dispatcher {
  const client = new Client(origin, { bodyTimeout: 0, headersTimeout: 0, connect })
  return client.compose((dispatch) => (options, handler) => {
    const queued = dispatch(options, handler)
    // Closing waits for the call queued just now to finish, then closes the socket.
    void client.close()
    return queued
  })
}

type ConnectOptions = ReturnType<typeof connectOptions>

function connectOptions(target: EngineTarget) {
  if (target.kind === 'unix') return { socketPath: target.socketPath }
  if (target.kind === 'tcp') return {}
  const file = (name: string) => readFileSync(join(target.certPath, name))
  return {
    ca: file('ca.pem'),
    cert: file('cert.pem'),
    key: file('key.pem'),
    rejectUnauthorized: target.verify,
  }
}
