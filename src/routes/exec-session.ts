/**
 * @module `GET /v1/containers/{id}/exec/session`: an interactive exec over a WebSocket (stdin,
 * stdout, stderr, resize, exit), through the runtime's WebSocket helper (`upgradeWebSocket` from
 * `@hono/node-server` with `ws` on Node, `hono/deno` on Deno; none on the edge: 501). Who may open it is decided over HTTP before the
 * upgrade (scope, policy, ownership); the command comes in the first message, checked against the
 * same strict schema as `POST …/exec`, so that its env never travels in a URL.
 */
import { z } from '@hono/zod-openapi'
import type { UpgradeWebSocket, WSContext, WSMessageReceive } from 'hono/ws'
import type { Guard } from '../domain/guard.ts'
import { type EngineClient, refusedAs } from '../engine/client.ts'
import {
  type ExecSession,
  type ExecSpec,
  inspectExec,
  killExec,
  openExecSession,
  resizeExec,
} from '../engine/exec.ts'
import { brokeOff, EXEC_COULD_NOT_RUN, neverRan } from '../engine/exec-run.ts'
import { ProblemError, problemBody } from '../errors.ts'
import { engineScope } from '../http/engines.ts'
import type { HeldSession } from '../http/held-streams.ts'
import type { LiveSessions } from '../http/live-sessions.ts'
import type { RevokedData } from '../http/open-streams.ts'
import type { ProblemMapper } from '../http/sse.ts'
import { accessContainer } from '../policy/access.ts'
import { FrameDecoder } from '../streams/demux.ts'
import { router } from './common.ts'
import { ExecBody } from './exec.schemas.ts'
import { checkExecPolicy, EXEC_REFUSED, execAuditDetail } from './exec.ts'
import { RESIZE_INTERVAL_MS, SESSION_QUEUE_BYTES } from './exec-session.limits.ts'
import { execSessionRoute } from './exec-session.schemas.ts'

const Start = ExecBody.extend({
  type: z.literal('start'),
  tty: z.boolean().optional(),
})
const Resize = z.strictObject({
  type: z.literal('resize'),
  rows: z.number().int().min(1).max(1000),
  cols: z.number().int().min(1).max(1000),
})
const Stdin = z.strictObject({ type: z.literal('stdin'), data: z.string().max(64 * 1024) })
const Eof = z.strictObject({ type: z.literal('eof') })
const ClientMessage = z.discriminatedUnion('type', [Start, Resize, Stdin, Eof])

/**
 * WebSocket close codes: RFC 6455's normal, going away (the gateway shuts down), policy
 * violation (bad input) and server error; and this gateway's own (4000–4999 are the
 * application's): the credential was revoked, or its scopes or policy changed (as the `reason`
 * of an event stream's `event: revoked`).
 */
const NORMAL = 1000
const GOING_AWAY = 1001
const POLICY = 1008
const FAILED = 1011
export const REVOKED = 4001
export const CHANGED = 4002

/** How the gateway ends a session: a last message, then the close. */
interface Ending {
  message: { type: 'revoked' | 'shutdown'; reason: string; detail: string }
  code: number
  reason: string
}

const SHUTDOWN: Ending = {
  message: { type: 'shutdown', reason: 'shutdown', detail: 'The gateway is shutting down' },
  code: GOING_AWAY,
  reason: 'shutdown',
}

const encoder = new TextEncoder()

export interface SessionDependencies {
  upgradeWebSocket: UpgradeWebSocket | undefined
  toProblem: ProblemMapper
  shutdown: AbortSignal | undefined
  /** Where the open sessions are, so that a shutdown can wait for them to end. */
  live: LiveSessions
}

export function execSessionRoutes(deps: SessionDependencies) {
  const app = router()

  app.openapi(execSessionRoute, async (c) => {
    const { id: ref } = c.req.valid('param')
    const guard = c.get('guard')
    // Everything that can be refused over HTTP is, before the upgrade.
    checkExecPolicy(guard, {})
    const { client: engine, model } = engineScope(c)
    const inspect = await accessContainer(engine, guard, ref, c.req.raw.signal, model)
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
      throw new ProblemError(426, 'upgrade-required', {
        detail: 'This is a WebSocket endpoint: open it with a WebSocket client',
        headers: { upgrade: 'websocket' },
      })
    }
    if (!deps.upgradeWebSocket) {
      throw new ProblemError(501, 'not-implemented', {
        detail:
          'This runtime serves no WebSockets (the edge entry cannot reach the engine but through fetch)',
      })
    }
    const session = new Session(engine, inspect.Id, deps, guard, ref)
    const policy = c.get('principal').policy.exec
    const upgraded = await deps.upgradeWebSocket(c, {
      onOpen: (_event, ws) => session.opened(ws),
      onMessage: (event, ws) => session.receive(event.data, ws, policy),
      onClose: () => session.closed(),
      onError: () => session.closed(),
    })
    if (!upgraded) return c.body(null, 500) as never
    // From here the session holds its stream slot (and its ticket) until its socket closes, and
    // a config reload judges its credential again, as for any event stream (http/held-streams.ts).
    session.waitForOpen()
    deps.live.add(session)
    c.set('session', session)
    return upgraded as never
  })

  return app
}

/** How long an answered upgrade may take to become an open socket before the session gives up. */
const OPEN_TIMEOUT_MS = 10_000
/** How long a session the gateway ends waits for its command to be killed before it closes. */
const STOP_WAIT_MS = 5_000

/**
 * One WebSocket's exec: waiting for `start`, running, or over (`#over`: its command is stopped or
 * ended); the session itself ends when its socket closes (`#ended`), which gives back its slot.
 */
class Session implements HeldSession {
  #exec: ExecSession | undefined
  #ws: WSContext | undefined
  /** Why the gateway ends the session, when it does before the socket opened. */
  #ending: Ending | undefined
  #ended = false
  readonly #endListeners: (() => void)[] = []
  #openTimer: ReturnType<typeof setTimeout> | undefined
  /** The kill of its command, once it was stopped (`killExec`). */
  #stopped: Promise<unknown> = Promise.resolve()
  #stopListening: (() => void) | undefined
  #spec: ExecSpec | undefined
  #starting = false
  #over = false
  #queue: Promise<void> = Promise.resolve()
  /** Bytes of the messages in {@link #queue}, not yet handled. */
  #queuedBytes = 0
  /** The latest size asked for and not yet sent. */
  #size: { rows: number; cols: number } | undefined
  /** The resizes under way, until no size is left to send; when the last one was sent. */
  #resizing: Promise<void> | undefined
  #resizedAt = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #timedOut = false
  readonly #stop = new AbortController()

  constructor(
    readonly engine: EngineClient,
    readonly containerId: string,
    readonly deps: SessionDependencies,
    readonly guard: Guard,
    readonly ref: string,
  ) {}

  /**
   * Messages are handled one after another, in order: stdin sent right after `start` waits for it.
   * At most {@link SESSION_QUEUE_BYTES} of them wait.
   */
  receive(
    data: WSMessageReceive,
    ws: WSContext,
    policy: { user: string; maxTimeoutSeconds: number },
  ): Promise<void> {
    const bytes = messageBytes(data)
    this.#queuedBytes += bytes
    if (this.#queuedBytes > SESSION_QUEUE_BYTES && !this.#over) {
      this.abandon()
      this.#fail(ws, inputOverflow())
      return this.#queue
    }
    this.#queue = this.#queue
      .then(() => this.#handle(data, ws, policy))
      .finally(() => {
        this.#queuedBytes -= bytes
      })
    return this.#queue
  }

  async #handle(
    data: WSMessageReceive,
    ws: WSContext,
    policy: { user: string; maxTimeoutSeconds: number },
  ): Promise<void> {
    if (this.#over || this.#ending) return
    try {
      if (typeof data !== 'string') {
        // Binary messages are stdin as they are.
        const bytes = data instanceof Blob ? await data.arrayBuffer() : data
        const exec = this.#running()
        // In order: a size asked for before this input is the command's when it reads it.
        await this.#resizing
        await exec.connection.write(new Uint8Array(bytes as ArrayBuffer))
        return
      }
      const message = parseMessage(data)
      if (message.type === 'start') return await this.#start(message, ws, policy)
      const exec = this.#running()
      if (message.type === 'resize') return this.#resize(exec, message, ws)
      await this.#resizing
      if (message.type === 'stdin') await exec.connection.write(encoder.encode(message.data))
      else await exec.connection.closeWrite()
    } catch (error) {
      this.#fail(ws, error)
    }
  }

  /**
   * Sends the size now, or leaves it to the resizes under way: they send the latest size asked
   * for, one call per {@link RESIZE_INTERVAL_MS} at most. Messages after it do not wait for it
   * (a burst of resizes becomes a few calls); stdin and eof do.
   */
  #resize(exec: ExecSession, size: { rows: number; cols: number }, ws: WSContext): void {
    this.#size = { rows: size.rows, cols: size.cols }
    this.#resizing ??= this.#sendSizes(exec, ws)
  }

  async #sendSizes(exec: ExecSession, ws: WSContext): Promise<void> {
    try {
      for (;;) {
        const wait = this.#resizedAt + RESIZE_INTERVAL_MS - Date.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        const size = this.#size
        this.#size = undefined
        // Cleared below in the same turn as this check: a size asked for later starts anew.
        if (!size || this.#over) return
        this.#resizedAt = Date.now()
        await resizeExec(this.engine, exec.id, size)
      }
    } catch (error) {
      this.#fail(ws, error)
    } finally {
      this.#resizing = undefined
    }
  }

  /** The upgrade was answered: the socket must open soon, and the gateway's shutdown ends it. */
  waitForOpen(): void {
    // A handshake the client abandons fires none of the socket's events (Node: no `close`).
    this.#openTimer = setTimeout(() => this.closed(), OPEN_TIMEOUT_MS)
    ;(this.#openTimer as { unref?: () => void }).unref?.()
    const shutdown = this.deps.shutdown
    if (!shutdown) return
    const onShutdown = () => this.#endWith(SHUTDOWN)
    if (shutdown.aborted) onShutdown()
    else {
      shutdown.addEventListener('abort', onShutdown, { once: true })
      this.#stopListening = () => shutdown.removeEventListener('abort', onShutdown)
    }
  }

  opened(ws: WSContext): void {
    clearTimeout(this.#openTimer)
    this.#ws = ws
    if (this.#ended) ws.close(GOING_AWAY, 'ended')
    else if (this.#ending) {
      ws.send(JSON.stringify(this.#ending.message))
      this.#close(ws, this.#ending)
    }
  }

  /** The socket closed (or failed, or never opened): the command is killed, the slot given back. */
  closed(): void {
    this.abandon()
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#openTimer)
    this.#stopListening?.()
    for (const listener of this.#endListeners.splice(0)) listener()
  }

  onEnd(listener: () => void): void {
    if (this.#ended) listener()
    else this.#endListeners.push(listener)
  }

  /** A config reload no longer accepts the credential that opened it, or grants otherwise now. */
  revoke(why: RevokedData): void {
    this.#endWith({
      message: { type: 'revoked', ...why },
      code: why.reason === 'revoked' ? REVOKED : CHANGED,
      reason: why.reason,
    })
  }

  /** The gateway ends the session: its command is stopped, the client told why, the socket closed. */
  #endWith(ending: Ending): void {
    if (this.#ended || this.#ending) return
    this.#ending = ending
    this.abandon()
    // Told at once; the close follows.
    try {
      this.#ws?.send(JSON.stringify(ending.message))
    } catch {
      // The socket is gone already.
    }
    // Closed once its command is stopped (or could not be): after the close, nothing of it runs.
    // A `start` under way is part of the queue, and the kill of what it started part of `#stopped`.
    const stopped = this.#queue.then(() => this.#stopped)
    const bounded = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_WAIT_MS)
      void stopped.finally(() => {
        clearTimeout(timer)
        resolve()
      })
    })
    void bounded.then(() => {
      if (this.#ws && !this.#ended) this.#close(this.#ws, ending)
    })
  }

  #close(ws: WSContext, ending: Ending): void {
    try {
      ws.close(ending.code, ending.reason)
    } catch {
      // The socket is gone already: its close event ends the session.
    }
  }

  /** The client left (or the socket failed): a running command is killed. */
  abandon(): void {
    if (this.#over) return
    this.#over = true
    this.#stop.abort()
    clearTimeout(this.#timer)
    const exec = this.#exec
    if (exec && this.#spec) {
      exec.connection.close()
      this.#stopped = killExec(this.engine, this.containerId, exec, this.#spec.user)
    }
  }

  #running(): ExecSession {
    if (!this.#exec) throw new ProblemError(400, 'bad-request', { detail: 'Send `start` first' })
    return this.#exec
  }

  async #start(
    message: z.infer<typeof Start>,
    ws: WSContext,
    policy: { user: string; maxTimeoutSeconds: number },
  ) {
    if (this.#starting || this.#exec) {
      throw new ProblemError(400, 'bad-request', { detail: 'The session has started already' })
    }
    this.#starting = true
    const timeoutSeconds = checkExecPolicy(this.guard, message)
    const spec: ExecSpec = {
      cmd: message.cmd,
      env: message.env ?? {},
      workingDir: message.workingDir,
      user: policy.user,
    }
    this.#spec = spec
    this.guard.record({
      outcome: 'allowed',
      decision: 'allow',
      reason: null,
      target: this.ref,
      status: 101,
      exec: execAuditDetail(this.containerId, spec, timeoutSeconds),
    })
    const tty = message.tty ?? false
    const exec = await openExecSession(
      this.engine,
      this.containerId,
      { ...spec, tty },
      this.#stop.signal,
    ).catch(refusedAs(EXEC_REFUSED))
    if (this.#over) {
      exec.connection.close()
      this.#stopped = killExec(this.engine, this.containerId, exec, spec.user)
      return
    }
    this.#exec = exec
    this.#timer = setTimeout(() => {
      this.#timedOut = true
      void killExec(this.engine, this.containerId, exec, spec.user)
    }, timeoutSeconds * 1000)
    void this.#pump(exec, tty, ws)
  }

  /**
   * Output to the client as it comes, then `exit`. The first output waits for one inspect: a
   * command the engine could not start (missing, or a user or workingDir that does not exist)
   * gets the engine's own error text as its output, which names runc internals and is held back,
   * as `runExec` does (src/engine/exec-run.ts); the client gets the fixed words instead.
   */
  async #pump(exec: ExecSession, tty: boolean, ws: WSContext) {
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() }
    const frames = new FrameDecoder()
    /** Known after the first output: whether the command ran (final once known). */
    let ran: boolean | undefined
    const send = (stream: 'stdout' | 'stderr', bytes: Uint8Array) => {
      if (!ran) return
      const data = decoders[stream].decode(bytes, { stream: true })
      if (data) ws.send(JSON.stringify({ type: stream, data }))
    }
    try {
      for await (const chunk of exec.connection.readable as unknown as AsyncIterable<Uint8Array>) {
        ran ??= !neverRan(await inspectExec(this.engine, exec.id))
        if (tty) send('stdout', chunk)
        else {
          frames.push(chunk, (frame) => {
            if (frame.stream === 'stdout' || frame.stream === 'stderr') {
              send(frame.stream, frame.payload)
            }
          })
        }
      }
      if (this.#over) return
      clearTimeout(this.#timer)
      const end = await inspectExec(this.engine, exec.id)
      if (neverRan(end) && !this.#timedOut) {
        this.#over = true
        throw new ProblemError(400, 'bad-request', { detail: EXEC_COULD_NOT_RUN })
      }
      if (end.Running && !this.#timedOut && this.#spec) {
        // Its output ended before its exit: cut on the way (`runExec` in src/engine/exec-run.ts).
        this.#over = true
        this.#stopped = killExec(this.engine, this.containerId, exec, this.#spec.user)
        throw brokeOff(undefined)
      }
      this.#over = true
      ws.send(
        JSON.stringify({
          type: 'exit',
          exitCode: end.Running ? null : end.ExitCode,
          timedOut: this.#timedOut,
        }),
      )
      ws.close(NORMAL, 'exited')
    } catch (error) {
      this.#fail(ws, error)
    }
  }

  /** A problem message, then the close: bad input (1008) or a failure (1011). */
  #fail(ws: WSContext, error: unknown) {
    // The gateway is ending the session (revoked, shutdown): what failed is its own doing, and
    // its message and close are on the way.
    if (this.#ending) return
    const problem = this.deps.toProblem(error)
    const body = problemBody(problem)
    try {
      ws.send(JSON.stringify({ type: 'problem', problem: body }))
    } catch {
      // The socket is gone already.
    }
    // Bad input before the command runs ends the session; during it, it is only reported.
    if (this.#exec && problem.status < 500 && !this.#over) return
    ws.close(problem.status < 500 ? POLICY : FAILED, problem.code)
    this.abandon()
  }
}

function parseMessage(text: string) {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new ProblemError(400, 'malformed-json', { detail: 'A message is not JSON' })
  }
  const parsed = ClientMessage.safeParse(raw)
  if (parsed.success) return parsed.data
  const invalidParams = parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({
          name: ['message', ...issue.path.map(String), key].join('.'),
          reason: `unknown field "${key}"`,
        }))
      : [{ name: ['message', ...issue.path.map(String)].join('.'), reason: issue.message }],
  )
  throw new ProblemError(400, 'validation-failed', {
    detail: `Invalid message: ${invalidParams.map((p) => p.name).join(', ')}`,
    invalidParams,
  })
}

/** What a message weighs while it waits: its bytes (a text message's length in UTF-16 units). */
function messageBytes(data: WSMessageReceive): number {
  if (typeof data === 'string') return data.length
  if (data instanceof Blob) return data.size
  return data.byteLength
}

/** The problem of a session whose client sent more than its command took. */
const inputOverflow = () =>
  new ProblemError(413, 'payload-too-large', {
    detail: `More than ${SESSION_QUEUE_BYTES} bytes of input were waiting for the command: send stdin no faster than it reads`,
  })
