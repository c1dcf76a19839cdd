/**
 * @module `GET /v1/containers/{id}/stats` (one snapshot) and `…/stats/stream` (server-sent events).
 *
 * The snapshot asks the engine with `stream=false`: the engine then waits for its second sample
 * so that the answer carries the previous one (`precpu_stats`) and CPU% can be computed. That
 * takes one to two seconds, because the engine samples every container on one shared 1 s tick:
 * the first sample comes at the next tick (at once when nothing else is watched), the second a
 * second later. Reading the first two frames of `stream=true`, or two `one-shot=true` answers,
 * waits for the same two ticks (`one-shot` too waits for the next tick; measured on 20.10), so
 * nothing faster gives a CPU%.
 *
 * The engine's stats stream never ends while the container exists, not even for a stopped one: it
 * sends zeroed frames (`read` = Go's zero time) every second. The stream here ends itself on the
 * first zeroed frame that the container's state confirms.
 */
import { createRoute } from '@hono/zod-openapi'
import type { EngineClient } from '../engine/client.ts'
import { containerPath, everStarted, inspectContainerIfAny } from '../engine/containers.ts'
import { dieOfRun } from '../engine/die-event.ts'
import { curateStats, hasPreviousSample, hasSample, notRunningStats } from '../engine/stats.ts'
import type { EngineContainerInspect } from '../engine/types.ts'
import { ProblemError } from '../errors.ts'
import { engineScope, sentPath } from '../http/engines.ts'
import {
  eventStreamHead,
  type SseSink,
  type StreamDependencies,
  sseResponse,
  sseSettings,
} from '../http/sse.ts'
import { accessContainer } from '../policy/access.ts'
import { NdjsonStream } from '../streams/ndjson.ts'
import { ContainerRefParams, ENGINE_PROBLEMS, problems, router, scoped } from './common.ts'
import { ContainerStatsSchema, StatsStreamEvent, StatsStreamQuery } from './stats.schemas.ts'

/** A stats frame is a few KiB; many block devices or networks make it longer, not this long. */
const MAX_FRAME_BYTES = 256 * 1024

/**
 * Zeroed frames in a row, one a second, after which a container the engine still calls running
 * is given up on (`end` with its state): the engine cannot sample it.
 */
const MAX_UNSAMPLED_FRAMES = 5

const statsRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/stats',
  operationId: 'getContainerStats',
  tags: ['stats'],
  summary: 'Sample a container’s resource use',
  description: [
    'CPU, memory, processes, network and block I/O, computed as `docker stats` does. The answer',
    'takes one to two seconds: CPU% needs two engine samples, which the engine takes on a shared',
    '1 s tick. A container that is not running answers 200 with `running: false`, `time: null`',
    'and every value 0 (at once), since a client watching a container expects a sample rather',
    'than an error when it stops.',
  ].join(' '),
  ...scoped('containers:read', { noQuery: true }),
  request: { params: ContainerRefParams },
  responses: {
    200: {
      description: 'The sample',
      content: { 'application/json': { schema: ContainerStatsSchema } },
    },
    ...problems(400, 404, ...ENGINE_PROBLEMS),
  },
})

const statsStreamRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/stats/stream',
  operationId: 'streamContainerStats',
  tags: ['stats'],
  summary: 'Follow a container’s resource use as server-sent events',
  description: [
    'About one `event: stats` a second, its `data` a `ContainerStats` sample (always with',
    '`running: true`); the first arrives within one to two seconds, once CPU% can be computed.',
    'Events carry no `id`: samples are live, and a reconnect simply starts a new series. When the',
    'container stops (or is not running to begin with): `event: end` (`StatsEndData`, with the',
    'exit code), then the stream closes; it does not follow a restart into the next run unless the',
    'engine’s 1 s sampling missed the stop. Also `event: problem` (a `Problem`) when the engine',
    'fails mid-stream, `event: shutdown` when the gateway stops, `event: revoked` when the',
    'credential that opened it is revoked or changed (a config reload), and `: heartbeat` comments.',
  ].join(' '),
  ...scoped('containers:read', { eventStream: true }),
  request: { params: ContainerRefParams, query: StatsStreamQuery },
  responses: {
    200: {
      description: 'The event stream',
      content: { 'text/event-stream': { schema: StatsStreamEvent } },
    },
    ...problems(400, 404, ...ENGINE_PROBLEMS),
  },
})

export function statsRoutes(deps: StreamDependencies) {
  const app = router()

  app.openapi(statsRoute, async (c) => {
    const { id } = c.req.valid('param')
    const signal = c.req.raw.signal
    const engine = engineScope(c).client
    const inspect = await accessContainer(engine, c.get('guard'), id, signal)
    // The engine would answer a zeroed frame at once: no need to ask.
    if (!inspect.State.Running || inspect.State.Restarting) return c.json(notRunningStats(), 200)
    const frame = await engine.json('GET', containerPath(inspect.Id, '/stats'), {
      query: { stream: false },
      signal,
      // A snapshot waits for the engine's next sample
      held: true,
    })
    return c.json(curateStats(frame), 200)
  })

  app.openapi(statsStreamRoute, async (c) => {
    const { id } = c.req.valid('param')
    // Inspect before answering: a missing container is a 404, not a stream that errors.
    const engine = engineScope(c).client
    const inspect = await accessContainer(engine, c.get('guard'), id, c.req.raw.signal)
    if (c.req.method === 'HEAD') return eventStreamHead()
    return sseResponse(
      sseSettings(deps),
      deps.toProblem,
      (sink) => followStats(engine, inspect, sink),
      sentPath(c),
    )
  })

  return app
}

/** Sends the engine's samples as `stats` events until the container stops, then `end`. */
async function followStats(engine: EngineClient, inspect: EngineContainerInspect, sink: SseSink) {
  let state: StoppedState = inspect
  if (inspect.State.Running && !inspect.State.Restarting) {
    const stopped = await sendSamples(engine, inspect, sink)
    if (!stopped) return
    state = stopped
  }
  if (sink.signal.aborted) return
  // A container gone with its run: the run's exit code is its `die` event's.
  const died = state === 'removed' ? await dieOfRun(engine, inspect, sink.signal) : undefined
  if (sink.signal.aborted) return
  await sink.send({ event: 'end', data: JSON.stringify(endOf(state, died?.exitCode ?? null)) })
}

type StoppedState = EngineContainerInspect | 'removed'

/**
 * Reads the engine's stream until the container is seen stopped (its state then), or the client
 * leaves (undefined). Leaving the loop cancels the engine's request either way.
 */
async function sendSamples(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  sink: SseSink,
): Promise<StoppedState | undefined> {
  const response = await engine.request('GET', containerPath(inspect.Id, '/stats'), {
    query: { stream: true },
    signal: sink.signal,
    timeoutMs: 0,
    held: true,
  })
  const body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
  const reader = body.pipeThrough(new NdjsonStream({ maxLineBytes: MAX_FRAME_BYTES })).getReader()
  // The first frame of a run has no previous sample, so no CPU%: skip it, as stream=false does.
  let previousWasSample = false
  let unsampled = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return await stateAfter(engine, inspect, sink.signal, true)
      if (!hasSample(value.value)) {
        previousWasSample = false
        const giveUp = ++unsampled >= MAX_UNSAMPLED_FRAMES
        const after = await stateAfter(engine, inspect, sink.signal, giveUp)
        if (after) return after
        continue
      }
      unsampled = 0
      const primed = previousWasSample || hasPreviousSample(value.value)
      previousWasSample = true
      if (!primed) continue
      const data = JSON.stringify(curateStats(value.value))
      if (!(await sink.send({ event: 'stats', data }))) return undefined
    }
  } catch (error) {
    if (sink.signal.aborted) return undefined
    throw statsReadProblem(error)
  } finally {
    reader.cancel().catch(() => {})
  }
}

/**
 * The container's state once the engine stopped sampling it, or undefined when it still runs the
 * same run: the engine can send a zeroed frame in the moment between its task ending and its
 * state saying so, and a later frame decides then. `final`: answer a state in any case (the
 * engine closed the stream, which it does when the container goes away, or cannot sample it).
 */
async function stateAfter(
  engine: EngineClient,
  before: EngineContainerInspect,
  signal: AbortSignal,
  final: boolean,
): Promise<StoppedState | undefined> {
  const after = await inspectContainerIfAny(engine, before.Id, signal)
  if (after === undefined) return 'removed'
  const { Running, Restarting, StartedAt } = after.State
  const sameRun = Running && !Restarting && StartedAt === before.State.StartedAt
  return sameRun && !final ? undefined : after
}

function endOf(
  state: StoppedState,
  removedExitCode: number | null,
): { state: string; exitCode: number | null } {
  if (state === 'removed') return { state: 'removed', exitCode: removedExitCode }
  const { Status, ExitCode } = state.State
  // The engine stops a container before it removes it: one `removing` that ran has an exit code.
  const ended =
    Status === 'exited' ||
    Status === 'dead' ||
    Status === 'restarting' ||
    (Status === 'removing' && everStarted(state.State))
  return { state: Status, exitCode: ended ? ExitCode : null }
}

/** Errors after the engine said 200 are a broken stream: never echo them. */
function statsReadProblem(error: unknown): unknown {
  if (error instanceof ProblemError) return error
  if (error instanceof Error && error.name === 'AbortError') return error
  return new ProblemError(502, 'engine-error', {
    detail: 'The stats stream from the Docker Engine broke off',
    cause: error,
  })
}
