/**
 * @module A run's `die` event, read back from the engine's own ring of recent events: where a
 * run's log ends, and the exit code of a run whose container is gone.
 */
import { extractIntegerField, NdjsonStream } from '../streams/index.ts'
import type { EngineClient } from './client.ts'
import { nanosToEngineTime, toEngineTime } from './time.ts'
import type { EngineContainerInspect } from './types.ts'

/** How long the `die` event's replay may take: it comes at once when the engine still has it. */
const DIE_EVENT_WAIT_MS = 2_000
/**
 * How far past the gateway's clock the `die` lookup reads. Without an `until` the engine goes on
 * with live events after its replay, so a `die` it no longer holds kept a log stream's `end`
 * waiting for {@link DIE_EVENT_WAIT_MS}: a stream of a container stopped 270 volume events before
 * ended 2.02–2.05 s after it was opened, and 0.27–0.30 s with `until` (22–56 ms while the engine
 * still held the `die`). The margin is for an engine whose clock is ahead of the gateway's: its
 * `die` of a moment ago is still found.
 */
const DIE_LOOKUP_AHEAD_MS = 250

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
 * gone; docs/engine-notes.md#the-end-of-a-run), so a replay up to now holds it.
 */
export async function dieOfRun(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  signal: AbortSignal,
): Promise<RunDeath | undefined> {
  const since = toEngineTime(inspect.State.StartedAt)
  if (since === undefined) return undefined
  const filters = { type: ['container'], container: [inspect.Id], event: ['die'] }
  const timeout = AbortSignal.timeout(DIE_EVENT_WAIT_MS)
  const until = nanosToEngineTime(BigInt(Date.now() + DIE_LOOKUP_AHEAD_MS) * 1_000_000n)
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

/** A `die` event's `exitCode` attribute (decimal digits), or null. */
function exitCodeOf(record: unknown): number | null {
  const attributes = (record as { Actor?: { Attributes?: Record<string, unknown> } } | null)?.Actor
    ?.Attributes
  const code = attributes?.exitCode
  return typeof code === 'string' && /^\d{1,10}$/.test(code) ? Number(code) : null
}
