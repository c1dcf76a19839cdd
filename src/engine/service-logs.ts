/**
 * @module Reading and following a Swarm service's log: the lines of every task, on every node,
 * as the manager gathers them, each saying its task and node; a follow resumes exactly where a
 * client left (`service-log-cursor.ts`) and ends when the service is removed.
 */
import { LogStreamError, pumpLogEvents } from '../streams/index.ts'
import { ServiceLogEventEncoder, ServiceLogSplitter } from '../streams/service-logs.ts'
import type { EngineClient } from './client.ts'
import { type LogEventSink, logReadProblem, sendReusing } from './logs.ts'
import {
  decodeServiceCursor,
  engineTimeToNanos,
  ServiceCursorIds,
  type ServiceLogCursor,
  streamKey,
} from './service-log-cursor.ts'
import { type EngineService, inspectService, servicePath } from './services.ts'

/** Which lines: the engine's own parameters (API 1.41 ignores `until` for services). */
export interface ServiceLogSelection {
  stdout?: boolean | undefined
  stderr?: boolean | undefined
  /** Engine time, `seconds.nanoseconds`. */
  since?: string | undefined
  /** The last N lines of each task, or `all`. */
  tail?: string | undefined
}

export interface ServiceLogLine {
  stream: 'stdout' | 'stderr'
  time: string
  task: string
  node: string
  text: string
}

/** How a followed service log ended: what the final `end` event says. */
export interface ServiceLogEnd {
  reason: 'removed'
}

const isTty = (service: EngineService) => service.Spec.TaskTemplate.ContainerSpec?.TTY === true

async function openServiceLogBody(
  engine: EngineClient,
  serviceId: string,
  query: ServiceLogSelection & { follow?: boolean },
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  const response = await engine.request('GET', servicePath(serviceId, '/logs'), {
    query: {
      stdout: query.stdout !== false ? 1 : 0,
      stderr: query.stderr !== false ? 1 : 0,
      since: query.since,
      tail: query.tail,
      follow: query.follow ? 1 : undefined,
      timestamps: 1,
      details: 1,
    },
    signal,
    timeoutMs: query.follow ? 0 : undefined,
    held: true,
  })
  return response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
}

const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/**
 * The lines of one JSON answer, at most `maxLines` and `maxBytes` of text (the first line always
 * goes); the read stops at the bound. Lines come in the order the manager gathered them: each
 * task's in order, the tasks' interleaved.
 */
export async function readServiceLogLines(
  engine: EngineClient,
  service: EngineService,
  selection: ServiceLogSelection,
  bounds: { maxLines: number; maxBytes: number },
  signal: AbortSignal,
): Promise<{ lines: ServiceLogLine[]; truncated: boolean }> {
  const lines: ServiceLogLine[] = []
  let bytes = 0
  let truncated = false
  const splitter = new ServiceLogSplitter({
    tty: isTty(service),
    onLine: (stream, time, task, node, text) => {
      if (truncated) return
      bytes += text.length
      if (lines.length === bounds.maxLines || (bytes > bounds.maxBytes && lines.length > 0)) {
        truncated = true
        return
      }
      lines.push({ stream, time, task, node, text: decoder.decode(text) })
    },
  })
  const body = await openServiceLogBody(engine, service.ID, selection, signal)
  const reader = body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) splitter.end()
      else splitter.write(value)
      if (done || truncated) break
    }
  } catch (error) {
    throw logReadProblem(error)
  } finally {
    await reader.cancel().catch(() => {})
  }
  return { lines, truncated }
}

/**
 * Follows the service's log into `sink`, each line's id the cursor after it, until the service
 * is removed (the engine itself never ends a followed service log: verified on 20.10) or the
 * client leaves (then undefined).
 */
export async function followServiceLog(
  engine: EngineClient,
  service: EngineService,
  selection: ServiceLogSelection,
  resumeAfter: ServiceLogCursor | undefined,
  sink: LogEventSink,
): Promise<ServiceLogEnd | undefined> {
  const follow = new AbortController()
  const stop = () => follow.abort()
  sink.signal.addEventListener('abort', stop, { once: true })
  let removed = false
  const watching = watchRemoval(engine, service.ID, follow.signal, () => {
    removed = true
    follow.abort()
  })
  try {
    await watching.connected
    // Removed before the watch began: nothing will say so.
    if (await isGone(engine, service.ID, follow.signal)) return { reason: 'removed' }
    let ids = new ServiceCursorIds(floorOf(selection), resumeAfter)
    let query: ServiceLogSelection = resumeAfter
      ? { ...selection, since: ids.since, tail: undefined }
      : selection
    for (;;) {
      const encoder = new ServiceLogEventEncoder({
        tty: isTty(service),
        eventId: (task, stream, time) => ids.next(streamKey(task, stream), time),
      })
      try {
        const body = await openServiceLogBody(
          engine,
          service.ID,
          { ...query, follow: true },
          follow.signal,
        )
        await pumpLogEvents(body, encoder, (messages) => sendReusing(sink, encoder, messages))
      } catch (error) {
        if (!follow.signal.aborted) throw logReadProblem(error)
      }
      if (removed) return { reason: 'removed' }
      if (sink.signal.aborted || follow.signal.aborted) return undefined
      // The engine let go of a service that still exists: on from the cursor, after a moment.
      const cursor = decodeServiceCursor(ids.current())
      ids = new ServiceCursorIds(undefined, cursor)
      query = { ...selection, since: ids.since, tail: undefined }
      await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
  } catch (error) {
    if (removed) return { reason: 'removed' }
    if (sink.signal.aborted) return undefined
    throw error instanceof LogStreamError ? logReadProblem(error) : error
  } finally {
    sink.signal.removeEventListener('abort', stop)
    follow.abort()
    await watching.done.catch(() => {})
  }
}

/** Where a new stream reads from, in ns: its `since`, the whole log, or (`tail`) undefined. */
function floorOf(selection: ServiceLogSelection): string | undefined {
  if (selection.since !== undefined) return engineTimeToNanos(selection.since)
  return selection.tail === undefined || selection.tail === 'all' ? '0' : undefined
}

async function isGone(engine: EngineClient, id: string, signal: AbortSignal): Promise<boolean> {
  try {
    await inspectService(engine, id, signal)
    return false
  } catch (error) {
    if (error instanceof Error && 'status' in error && error.status === 404) return true
    throw error
  }
}

/**
 * The engine's events for this service's removal, on a connection of its own while the follow
 * runs: `onRemoved` at the first one.
 */
function watchRemoval(
  engine: EngineClient,
  id: string,
  signal: AbortSignal,
  onRemoved: () => void,
): { connected: Promise<void>; done: Promise<void> } {
  const filters = JSON.stringify({ type: ['service'], service: [id], event: ['remove'] })
  const response = engine.request('GET', '/events', {
    query: { filters },
    signal,
    timeoutMs: 0,
    held: true,
  })
  const done = response.then(async (answer) => {
    const reader = answer.body?.getReader()
    if (!reader) return
    try {
      for (;;) {
        const { done: ended, value } = await reader.read()
        if (ended) return
        if (value.length > 0) return onRemoved()
      }
    } finally {
      await reader.cancel().catch(() => {})
    }
  })
  return { connected: response.then(() => undefined), done }
}
