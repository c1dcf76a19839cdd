/**
 * @module Running a command in a container on the engine: create the exec, start it (its output
 * as the engine's multiplexed stream), inspect it for the exit code, and stop it when it must
 * not run on (docs/engine-notes.md#exec).
 *
 * The engine has no call that stops an exec. Each exec started here carries a tag in its
 * environment (`DOCKGATE_EXEC=<random>`), inherited by whatever it starts; stopping it is a second
 * exec, as the same user, that sends SIGKILL to every process of the container whose environment
 * holds the tag. That needs `sh`, `tr`, `grep` and `kill` in the image (busybox has them); without
 * them the process runs until it ends or the container stops.
 */
import { z } from 'zod'
import { ProblemError } from '../errors.ts'
import type { EngineClient } from './client.ts'
import { containerPath } from './containers.ts'
import type { EngineConnection } from './transport.ts'
import { parseEngine } from './types.ts'

/** The environment variable that tags an exec's processes; requests may not set it. */
export const EXEC_TAG_KEY = 'DOCKGATE_EXEC'

export interface ExecSpec {
  cmd: readonly string[]
  env: Readonly<Record<string, string>>
  workingDir?: string | undefined
  /** From the policy, never from the request. */
  user: string
}

export interface StartedExec {
  id: string
  /** The tag its processes carry (`DOCKGATE_EXEC=…`). */
  tag: string
  /**
   * The engine's multiplexed output (stdout 1, stderr 2), until the process ends; read ahead of
   * its consumer by {@link EXEC_READ_AHEAD_BYTES}. Cancelling it closes the engine connection.
   */
  output: ReadableStream<Uint8Array>
}

const EngineExecCreated = z.looseObject({ Id: z.string() })
const EngineExecInspect = z.looseObject({
  Running: z.boolean(),
  ExitCode: z.number().int().nullable(),
  Pid: z.number().int(),
})
export type EngineExecInspect = z.infer<typeof EngineExecInspect>

/**
 * How much of an exec's output is read before the consumer asks for it: while it formats and
 * writes one chunk, the engine's next ones keep arriving (an HTTP body alone is read only when
 * asked, so the engine stood still meanwhile: bench phase `exec`).
 */
export const EXEC_READ_AHEAD_BYTES = 256 * 1024

/** Creates and starts an exec with stdout and stderr attached (no stdin, no TTY). */
export async function startExec(
  engine: EngineClient,
  containerId: string,
  spec: ExecSpec,
  signal: AbortSignal,
): Promise<StartedExec> {
  const created = await createExec(engine, containerId, spec, { stdin: false, tty: false }, signal)
  const path = `/exec/${encodeURIComponent(created.id)}/start`
  const body = { Detach: false, Tty: false }
  if (engine.canUpgrade) {
    // Upgraded, the output is read off the engine's connection as the runtime gives it (on Node
    // the socket itself, each chunk handed to `runExec` in the socket's read callback: no HTTP
    // client body, stream adapters or promises per chunk, bench phase `exec`). The bytes after
    // the engine's answer head are the same as below.
    const connection = await engine.upgrade('POST', path, {
      body,
      signal,
      readAheadBytes: EXEC_READ_AHEAD_BYTES,
      push: true,
    })
    return { id: created.id, tag: created.tag, output: connection.readable }
  }
  // Without `Upgrade: tcp` the engine answers 200 and writes the output on the hijacked
  // connection until the process ends, then closes it: an ordinary body, read to its end.
  const response = await engine.request('POST', path, {
    body,
    signal,
    timeoutMs: 0,
    held: true,
  })
  const output = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
  // Built with the same fields in the same order either way: one object shape for runExec,
  // whose optimised code was thrown away on a spread's other shape (V8's --trace-deopt)
  return { id: created.id, tag: created.tag, output: readAhead(output) }
}

function readAhead(output: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return output.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      undefined,
      new ByteLengthQueuingStrategy({ highWaterMark: EXEC_READ_AHEAD_BYTES }),
    ),
  )
}

/** The exec as the engine keeps it: tagged, as the policy's user, never privileged. */
async function createExec(
  engine: EngineClient,
  containerId: string,
  spec: ExecSpec,
  attach: { stdin: boolean; tty: boolean },
  signal: AbortSignal,
): Promise<{ id: string; tag: string }> {
  const tag = `${EXEC_TAG_KEY}=${randomHex(16)}`
  const created = parseEngine(
    EngineExecCreated,
    await engine.json('POST', containerPath(containerId, '/exec'), {
      body: {
        Cmd: spec.cmd,
        Env: [...Object.entries(spec.env).map(([key, value]) => `${key}=${value}`), tag],
        WorkingDir: spec.workingDir,
        User: spec.user,
        Privileged: false,
        AttachStdin: attach.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: attach.tty,
      },
      signal,
    }),
    'exec create answer',
  )
  return { id: created.Id, tag }
}

export interface ExecSession {
  id: string
  tag: string
  /**
   * stdin goes in, output comes out: multiplexed (stdout 1, stderr 2) without a TTY, raw with
   * one. Ending what is written ends the command's stdin.
   */
  connection: EngineConnection
}

/** Creates an exec with stdin attached and opens it as an upgraded connection (a session). */
export async function openExecSession(
  engine: EngineClient,
  containerId: string,
  spec: ExecSpec & { tty: boolean },
  signal: AbortSignal,
): Promise<ExecSession> {
  const id = await createExec(engine, containerId, spec, { stdin: true, tty: spec.tty }, signal)
  const connection = await engine.upgrade('POST', `/exec/${encodeURIComponent(id.id)}/start`, {
    body: { Detach: false, Tty: spec.tty },
    signal,
  })
  return { ...id, connection }
}

/** Resizes a session's TTY; the engine refuses (409/500) an exec without one. */
export async function resizeExec(
  engine: EngineClient,
  execId: string,
  size: { rows: number; cols: number },
): Promise<void> {
  await engine.status('POST', `/exec/${encodeURIComponent(execId)}/resize`, {
    query: { h: size.rows, w: size.cols },
  })
}

export async function inspectExec(
  engine: EngineClient,
  execId: string,
  signal?: AbortSignal,
): Promise<EngineExecInspect> {
  const raw = await engine.json('GET', `/exec/${encodeURIComponent(execId)}/json`, { signal })
  return parseEngine(EngineExecInspect, raw, 'exec inspect answer')
}

/** Kills every process of the container whose environment holds `tag` (`$1` below). */
const KILL_TAGGED =
  'for d in /proc/[0-9]*; do ' +
  `if tr '\\000' '\\n' < "$d/environ" 2>/dev/null | grep -qxF "$1"; then kill -KILL "\${d#/proc/}" 2>/dev/null; fi; ` +
  'done'

/**
 * Stops a started exec: SIGKILL to its tagged processes, by a second exec as the same user.
 * Answers whether that exec ran (false: the image has no `sh`, or the container stopped); not
 * bounded by the caller's signal, which has usually aborted already when this is needed. Tried
 * again a moment later when a call to the engine fails: what broke the exec's own connection (a
 * middlebox dropping connections) broke the pooled ones too, and the first try may take one
 * before the pool has seen it go (test/engine/exec.test.ts, a connection that breaks).
 */
export async function killExec(
  engine: EngineClient,
  containerId: string,
  started: { tag: string },
  user: string,
): Promise<boolean> {
  const ran = await killTagged(engine, containerId, started.tag, user)
  if (ran !== undefined) return ran
  await new Promise((resolve) => setTimeout(resolve, KILL_RETRY_MS))
  return (await killTagged(engine, containerId, started.tag, user)) ?? false
}

/** How long a kill that found no way to the engine waits before its second try. */
const KILL_RETRY_MS = 100

/** Whether the killing exec ran and succeeded; undefined when a call to the engine failed. */
async function killTagged(
  engine: EngineClient,
  containerId: string,
  tag: string,
  user: string,
): Promise<boolean | undefined> {
  try {
    const killer = parseEngine(
      EngineExecCreated,
      await engine.json('POST', containerPath(containerId, '/exec'), {
        body: {
          Cmd: ['sh', '-c', KILL_TAGGED, 'dockgate-kill', tag],
          User: user,
          Privileged: false,
          AttachStdout: true,
          AttachStderr: true,
          Tty: false,
        },
      }),
      'exec create answer',
    )
    const response = await engine.request('POST', `/exec/${encodeURIComponent(killer.Id)}/start`, {
      body: { Detach: false, Tty: false },
      held: true,
    })
    await response.arrayBuffer()
    const { ExitCode, Pid } = await inspectExec(engine, killer.Id)
    return Pid !== 0 && ExitCode === 0
  } catch (error) {
    // The engine's own refusal (the container stopped or gone) is an answer; no way through is not
    return error instanceof ProblemError && error.status >= 500 ? undefined : false
  }
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('')
}
