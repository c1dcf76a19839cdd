/**
 * @module A run's `die` event, read back from the engine's own ring of recent events: where a
 * run's log ends, and the exit code of a run whose container is gone.
 */
import { extractIntegerField, NdjsonStream } from '../streams/index.ts'
import type { EngineClient } from './client.ts'
import {
  compareEngineTimes,
  isZeroTime,
  nanosToEngineTime,
  shiftEngineTime,
  toEngineTime,
} from './time.ts'
import type { EngineContainerInspect } from './types.ts'

/** How long the `die` event's replay may take: it comes at once when the engine still has it. */
const DIE_EVENT_WAIT_MS = 2_000
/**
 * How far past the end of its window the `die` lookup reads. Without an `until` the engine goes on
 * with live events after its replay, so a `die` it no longer holds kept a log stream's `end`
 * waiting for {@link DIE_EVENT_WAIT_MS}: a stream of a container stopped 270 volume events before
 * ended 2.02–2.05 s after it was opened, and 0.27–0.30 s with `until` (22–56 ms while the engine
 * still held the `die`). The margin is for an engine whose clock is ahead of the gateway's: its
 * `die` of a moment ago is still found.
 */
const DIE_LOOKUP_AHEAD_NS = 250_000_000n

/** A run's `die` event, as the end of a stream reads it. */
export interface RunDeath {
  /** Its engine time. */
  time: string
  /** The exit code it names (its `exitCode` attribute), or null. */
  exitCode: number | null
}

/**
 * The `die` event of the run `inspect` saw started, from the engine's ring of recent events;
 * undefined when it is no longer there (256 events later: docs/engine-notes.md#event-ring). Asked
 * once the run is over: its `die` came before the inspect that showed it so (or the container
 * gone; docs/engine-notes.md#the-end-of-a-run), so a replay up to now holds it. `finishedAt`: the
 * run's `State.FinishedAt` when an inspect after it showed it (the engine's own clock).
 */
export async function dieOfRun(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  signal: AbortSignal,
  finishedAt?: string,
): Promise<RunDeath | undefined> {
  const since = toEngineTime(inspect.State.StartedAt)
  if (since === undefined) return undefined
  const filters = { type: ['container'], container: [inspect.Id], event: ['die'] }
  const timeout = AbortSignal.timeout(DIE_EVENT_WAIT_MS)
  const until = lookupEnd(since, finishedAt)
  try {
    const response = await engine.request('GET', '/events', {
      query: { since, until, filters: JSON.stringify(filters) },
      signal: AbortSignal.any([signal, timeout]),
      timeoutMs: 0,
      held: true,
    })
    if (!response.body) return undefined
    const records = response.body.pipeThrough(new NdjsonStream()).getReader()
    try {
      for (;;) {
        const { done, value } = await records.read()
        if (done) return undefined
        const nano = extractIntegerField(value.raw, 'timeNano')
        if (nano !== undefined)
          return { time: nanosToEngineTime(nano), exitCode: exitCodeOf(value.value) }
      }
    } finally {
      await records.cancel().catch(() => {})
    }
  } catch (error) {
    if (signal.aborted || timeout.aborted) return undefined
    throw error
  }
}

/**
 * Where the lookup's replay ends: a margin past the latest of the gateway's clock, the run's end
 * and its start. The engine stamps the `die` by its own clock, which may be ahead of the
 * gateway's (a remote engine). The run's end (`FinishedAt`, the engine's clock) then still covers
 * a `die` written within the margin after it: 21–30 ms after, for a run without output, in three
 * runs on 20.10; a run whose output took longer to drain has its `die` later (`endOfRun` in
 * logs.ts), and one missed is what a `die` gone from the ring is. The start keeps the window from
 * ending before it begins, which the engine refuses with a 400 ("`since` time … cannot be after
 * `until` time"): a run gone with its container has no end to read.
 */
function lookupEnd(since: string, finishedAt: string | undefined): string {
  let latest = nanosToEngineTime(BigInt(Date.now()) * 1_000_000n)
  const ended = finishedAt && !isZeroTime(finishedAt) ? toEngineTime(finishedAt) : undefined
  for (const time of [ended, since]) {
    if (time !== undefined && compareEngineTimes(time, latest) > 0) latest = time
  }
  return shiftEngineTime(latest, DIE_LOOKUP_AHEAD_NS)
}

/** A `die` event's `exitCode` attribute (decimal digits), or null. */
function exitCodeOf(record: unknown): number | null {
  const attributes = (record as { Actor?: { Attributes?: Record<string, unknown> } } | null)?.Actor
    ?.Attributes
  const code = attributes?.exitCode
  return typeof code === 'string' && /^\d{1,10}$/.test(code) ? Number(code) : null
}
