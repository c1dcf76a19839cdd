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
import { ProblemError, problemBody } from '../errors.ts'
import { engineScope } from '../http/engines.ts'
import type { ProblemMapper } from '../http/sse.ts'
import { accessContainer } from '../policy/access.ts'
import { FrameDecoder } from '../streams/demux.ts'
import { router } from './common.ts'
import { ExecBody } from './exec.schemas.ts'
import { checkExecPolicy, EXEC_REFUSED, execAuditDetail } from './exec.ts'
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

/** WebSocket close codes (RFC 6455): normal, policy violation (bad input), server error. */
const NORMAL = 1000
const POLICY = 1008
const FAILED = 1011

const encoder = new TextEncoder()

export interface SessionDependencies {
  upgradeWebSocket: UpgradeWebSocket | undefined
  toProblem: ProblemMapper
  shutdown: AbortSignal | undefined
}

export function execSessionRoutes(deps: SessionDependencies) {
  const app = router()

  app.openapi(execSessionRoute, async (c) => {
    const { id: ref } = c.req.valid('param')
    const guard = c.var.guard
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
    const policy = c.var.principal.policy.exec
    const upgraded = await deps.upgradeWebSocket(c, {
      onMessage: (event, ws) => session.receive(event.data, ws, policy),
      onClose: () => session.abandon(),
      onError: () => session.abandon(),
    })
    return (upgraded ?? c.body(null, 500)) as never
  })

  return app
}

/** One WebSocket's exec: waiting for `start`, running, or over. */
class Session {
  #exec: ExecSession | undefined
  #spec: ExecSpec | undefined
  #starting = false
  #over = false
  #queue: Promise<void> = Promise.resolve()
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

  /** Messages are handled one after another, in order: stdin sent right after `start` waits for it. */
  receive(
    data: WSMessageReceive,
    ws: WSContext,
    policy: { user: string; maxTimeoutSeconds: number },
  ): Promise<void> {
    this.#queue = this.#queue.then(() => this.#handle(data, ws, policy))
    return this.#queue
  }

  async #handle(
    data: WSMessageReceive,
    ws: WSContext,
    policy: { user: string; maxTimeoutSeconds: number },
  ): Promise<void> {
    if (this.#over) return
    try {
      if (typeof data !== 'string') {
        // Binary messages are stdin as they are.
        const bytes = data instanceof Blob ? await data.arrayBuffer() : data
        await this.#running().connection.write(new Uint8Array(bytes as ArrayBuffer))
        return
      }
      const message = parseMessage(data)
      if (message.type === 'start') return await this.#start(message, ws, policy)
      const exec = this.#running()
      if (message.type === 'stdin') await exec.connection.write(encoder.encode(message.data))
      else if (message.type === 'eof') await exec.connection.closeWrite()
      else await resizeExec(this.engine, exec.id, message)
    } catch (error) {
      this.#fail(ws, error)
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
      void killExec(this.engine, this.containerId, exec, this.#spec.user)
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
      void killExec(this.engine, this.containerId, exec, spec.user)
      return
    }
    this.#exec = exec
    this.#timer = setTimeout(() => {
      this.#timedOut = true
      void killExec(this.engine, this.containerId, exec, spec.user)
    }, timeoutSeconds * 1000)
    void this.#pump(exec, tty, ws)
  }

  /** Output to the client as it comes, then `exit`. */
  async #pump(exec: ExecSession, tty: boolean, ws: WSContext) {
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() }
    const frames = new FrameDecoder()
    const send = (stream: 'stdout' | 'stderr', bytes: Uint8Array) => {
      const data = decoders[stream].decode(bytes, { stream: true })
      if (data) ws.send(JSON.stringify({ type: stream, data }))
    }
    try {
      for await (const chunk of exec.connection.readable as unknown as AsyncIterable<Uint8Array>) {
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
