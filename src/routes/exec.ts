/**
 * @module `POST /v1/containers/{id}/exec`: a command in the caller's own running container, as
 * its policy's user, answered as JSON once it ends or as server-sent events while it runs. The
 * engine side (start, stop, exit code) is engine/exec-run.ts.
 */
import type { Context } from 'hono'
import type { ExecAuditDetail } from '../domain/audit.ts'
import type { Guard } from '../domain/guard.ts'
import { redactEnv } from '../domain/redaction.ts'
import { refusedAs } from '../engine/client.ts'
import type { ExecSpec } from '../engine/exec.ts'
import { type ExecEnd, runExec } from '../engine/exec-run.ts'
import { ProblemError } from '../errors.ts'
import type { AppEnv } from '../http/context.ts'
import { engineScope, sentPath } from '../http/engines.ts'
import { type StreamDependencies, sseResponse, sseSettings } from '../http/sse.ts'
import { accessContainer } from '../policy/access.ts'
import type { LogFrame } from '../streams/demux.ts'
import { router } from './common.ts'
import { type ExecBody, execRoute } from './exec.schemas.ts'
import { ExecEventEncoder } from './exec-events.ts'

/** Most bytes of stdout and stderr together one JSON answer holds; the rest is read and dropped. */
export const EXEC_MAX_OUTPUT_BYTES = 1024 * 1024

export const EXEC_REFUSED = {
  409: 'The container is not running',
  400: 'The Docker Engine refused the exec',
}

export function execRoutes(deps: StreamDependencies) {
  const app = router()

  app.openapi(execRoute, async (c) => {
    const { id: ref } = c.req.valid('param')
    const body = c.req.valid('json')
    const signal = c.req.raw.signal
    const timeoutSeconds = checkExecPolicy(c.get('guard'), body)
    const { client: engine, model } = engineScope(c)
    const inspect = await accessContainer(engine, c.get('guard'), ref, signal, model)
    const spec: ExecSpec = {
      cmd: body.cmd,
      env: body.env ?? {},
      workingDir: body.workingDir,
      user: c.get('principal').policy.exec.user,
    }
    recordExec(c, inspect.Id, spec, timeoutSeconds)
    const timeoutMs = timeoutSeconds * 1000
    if (wantsEventStream(c)) {
      return sseResponse(
        sseSettings(deps),
        deps.toProblem,
        async (sink) => {
          const events = new ExecEventEncoder()
          let known = false
          const held: LogFrame[] = []
          // The events of each read of the engine's output leave in one write, and a promise
          // only when the client has no room (backpressure).
          const flush = () => {
            const batch = events.take()
            if (batch.length === 0) return
            const room = sink.writeEncoded(batch)
            // Its slab is written over by the next batch when the kernel took it all already
            if (sink.wroteThrough()) events.reuse(batch)
            if (!room) return sink.whenWritable().then(() => undefined)
          }
          const end = await runExec(engine, inspect.Id, spec, {
            timeoutMs,
            signal: sink.signal,
            onFrame(frame, running) {
              // Once the command is known to run, each frame is taken at once (no promise)
              if (known) return events.add(frame)
              // Until then, output may be the engine's own error text.
              return running().then((ran) => {
                known = ran
                if (!known) {
                  held.push(frame)
                  return
                }
                for (const earlier of held.splice(0)) events.add(earlier)
                events.add(frame)
              })
            },
            onChunkEnd: flush,
          })
            // What came before a failure goes before its problem event
            .finally(flush)
            .catch(refusedAs(EXEC_REFUSED))
          for (const earlier of held.splice(0)) events.add(earlier)
          // A character the output began and never finished: shown as the JSON answer shows it
          events.end('stdout')
          events.end('stderr')
          await flush()
          await sink.send({ event: 'end', data: JSON.stringify(end) })
        },
        sentPath(c),
      ) as never
    }
    const output = new BoundedOutput(EXEC_MAX_OUTPUT_BYTES)
    const end: ExecEnd = await runExec(engine, inspect.Id, spec, {
      timeoutMs,
      signal,
      onFrame: (frame) => output.add(frame),
    }).catch(refusedAs(EXEC_REFUSED))
    return c.json({ ...end, ...output.result() }, 200)
  })

  return app
}

/**
 * Whether the principal may exec at all, and for how long: the request's timeout, at most the
 * policy's (403 above it), by default the policy's. Before anything reaches the engine.
 */
export function checkExecPolicy(guard: Guard, body: Pick<ExecBody, 'timeoutSeconds'>): number {
  const { exec } = guard.principal.policy
  if (!exec.allowed) {
    guard.deny(
      'exec-not-allowed',
      null,
      new ProblemError(403, 'forbidden', { detail: "This client's policy does not allow exec" }),
    )
  }
  const asked = body.timeoutSeconds ?? exec.maxTimeoutSeconds
  if (asked > exec.maxTimeoutSeconds) {
    guard.deny(
      'exec-timeout-over-max',
      null,
      new ProblemError(403, 'forbidden', {
        detail: `timeoutSeconds ${asked} is above this client's maximum of ${exec.maxTimeoutSeconds}`,
      }),
    )
  }
  return asked
}

function recordExec(c: Context<AppEnv>, container: string, spec: ExecSpec, timeout: number) {
  c.set('execAudit', execAuditDetail(container, spec, timeout))
}

/** What the audit line says an exec ran: its env keys only, each value null. */
export function execAuditDetail(
  container: string,
  spec: ExecSpec,
  timeoutSeconds: number,
): ExecAuditDetail {
  const keys = Object.keys(spec.env).map((key) => `${key}=`)
  return {
    container,
    cmd: spec.cmd,
    env: redactEnv(keys, []) as Record<string, null>,
    user: spec.user,
    workingDir: spec.workingDir ?? null,
    timeoutSeconds,
  }
}

const wantsEventStream = (c: Context<AppEnv>) =>
  (c.req.header('accept') ?? '').includes('text/event-stream')

/** stdout and stderr kept apart, at most `maxBytes` of both together, cut at a character. */
class BoundedOutput {
  readonly #parts = { stdout: [] as Uint8Array[], stderr: [] as Uint8Array[] }
  #room: number
  #truncated = false

  constructor(maxBytes: number) {
    this.#room = maxBytes
  }

  add(frame: LogFrame): void {
    if (frame.stream !== 'stdout' && frame.stream !== 'stderr') return
    const payload = frame.payload
    if (payload.length <= this.#room) {
      // Payloads may be views of the engine's chunks: copied, as those are not reused but kept
      this.#parts[frame.stream].push(payload.slice())
      this.#room -= payload.length
      return
    }
    this.#truncated = true
    if (this.#room > 0) {
      this.#parts[frame.stream].push(payload.slice(0, characterStart(payload, this.#room)))
      this.#room = 0
    }
  }

  result() {
    const decode = (parts: Uint8Array[]) => {
      const decoder = new TextDecoder()
      return parts.map((part) => decoder.decode(part, { stream: true })).join('') + decoder.decode()
    }
    return {
      stdout: decode(this.#parts.stdout),
      stderr: decode(this.#parts.stderr),
      truncated: this.#truncated,
    }
  }
}

/** The last UTF-8 character start at or before `at`: a cut there splits no character. */
function characterStart(bytes: Uint8Array, at: number): number {
  let i = at
  while (i > 0 && ((bytes[i] ?? 0) & 0xc0) === 0x80) i--
  return i
}
