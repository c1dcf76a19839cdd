/**
 * The engine-side log follower on its own, against the real engine: no route, no HTTP response,
 * only a sink that collects what the follow writes.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { inspectContainer } from '../../src/engine/containers.ts'
import { decodeCursor } from '../../src/engine/log-cursor.ts'
import { followLog, type LogEventSink, readLogLines } from '../../src/engine/logs.ts'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { createDirect, direct, runDirect, testEngineEnv } from '../support/engine.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const engine = new EngineClient(createNodeTransport(engineTargetFromEnv(process.env)))
afterAll(() => engine.transport.close())
afterEach(() => vi.restoreAllMocks())

const labels = { [TEST_LABEL]: TEST_RUN }

/** A sink that keeps every event written to it; `stopAfter` batches, it stops reading. */
function collectingSink(stopAfter = Number.POSITIVE_INFINITY) {
  const stop = new AbortController()
  const decoder = new TextDecoder()
  let text = ''
  let batches = 0
  const sink: LogEventSink = {
    signal: stop.signal,
    sendEncoded: async (chunk) => {
      if (stop.signal.aborted) return false
      text += decoder.decode(chunk)
      if (++batches >= stopAfter) stop.abort()
      return !stop.signal.aborted
    },
  }
  return { sink, events: () => parseEvents(text) }
}

/** Event-stream text as `{ event, id, data }` records (the follower writes only these fields). */
function parseEvents(text: string) {
  return text
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => {
      const fields = new Map(
        block
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
      )
      return {
        event: fields.get('event'),
        id: fields.get('id'),
        data: JSON.parse(fields.get('data') ?? ''),
      }
    })
}

/** The engine's own replay of its events since an RFC 3339 time, up to now, with these filters. */
async function engineEventsUpToNow(since: string, filters: Record<string, string[]>) {
  const query = new URLSearchParams({
    since: String(Date.parse(since) / 1000),
    until: String(Date.now() / 1000),
    filters: JSON.stringify(filters),
  })
  const answer = await direct(`/events?${query}`)
  return answer.text.split('\n').filter((line) => line !== '')
}

/** The engine forgets its events 256 later (docs/engine-notes.md#event-ring): 270 more. */
async function pushEventsOutOfRing() {
  const volume = uniqueName('ring')
  for (let i = 0; i < 135; i++) {
    await direct('/volumes/create', { method: 'POST', body: { Name: `${volume}-${i}` } })
    await direct(`/volumes/${volume}-${i}`, { method: 'DELETE' })
  }
}

const run = (cmd: string) =>
  runDirect({ name: uniqueName('follower'), cmd: ['sh', '-c', cmd], labels })

describe('followLog', () => {
  it('writes each line as an event named by its cursor, and answers how the run ended', async () => {
    const id = await run('echo one; sleep 0.2; echo two >&2; sleep 0.2; printf last; exit 3')
    const inspect = await inspectContainer(engine, id)
    const { sink, events } = collectingSink()

    const end = await followLog(engine, inspect, {}, undefined, sink)

    expect(end).toEqual({ exitCode: 3, state: 'exited' })
    expect(events().map((e) => [e.event, e.data.text])).toEqual([
      ['stdout', 'one'],
      ['stderr', 'two'],
      ['stdout', 'last'],
    ])
    for (const e of events()) expect(decodeCursor(e.id ?? '')?.time).toBe(e.data.time)
  })

  it('ends a stopped run whose `die` the engine no longer holds with every line and its exit code', async () => {
    const id = await run('echo one; echo two; exit 4')
    const inspect = await inspectContainer(engine, id)
    const dieOfRun = { container: [id], event: ['die'] }
    expect(await engineEventsUpToNow(inspect.State.StartedAt, dieOfRun)).toHaveLength(1)
    // The engine keeps its last 256 events (docs/engine-notes.md#event-ring): 270 more push the
    // run's `die` out of it.
    await pushEventsOutOfRing()
    expect(await engineEventsUpToNow(inspect.State.StartedAt, dieOfRun)).toEqual([])
    const { sink, events } = collectingSink()

    const end = await followLog(engine, inspect, {}, undefined, sink)

    expect(end).toEqual({ exitCode: 4, state: 'exited' })
    expect(events().map((e) => e.data.text)).toEqual(['one', 'two'])
  })

  it('ends a run removed with its container, whose `die` the engine no longer holds, with no exit code', async () => {
    const id = await createDirect({
      name: uniqueName('gone'),
      cmd: ['sh', '-c', 'echo one; sleep 0.3; exit 6'],
      labels,
      hostConfig: { AutoRemove: true },
    })
    expect((await direct(`/containers/${id}/start`, { method: 'POST' })).status).toBe(204)
    const inspect = await inspectContainer(engine, id)
    // The follow holds its first line until the container is gone and its `die` forgotten.
    let delivered = () => {}
    const firstLine = new Promise<void>((resolve) => {
      delivered = resolve
    })
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const { sink, events } = collectingSink()
    const send = sink.sendEncoded
    const holding: LogEventSink = {
      signal: sink.signal,
      sendEncoded: async (chunk) => {
        delivered()
        await held
        return send(chunk)
      },
    }
    const ending = followLog(engine, inspect, {}, undefined, holding)
    await firstLine
    while ((await direct(`/containers/${id}/json`)).status !== 404) await sleep(50)
    await pushEventsOutOfRing()
    release()

    const end = await ending

    expect(end).toEqual({ exitCode: null, state: 'removed' })
    expect(events().map((e) => e.data.text)).toEqual(['one'])
  })

  it("ends a stopped run with every line and its exit code when the gateway's clock is behind the engine's", async () => {
    const id = await run('echo one; sleep 1.2; echo two; exit 3')
    const inspect = await inspectContainer(engine, id)
    const { sink, events } = collectingSink()
    // Mock: the engine shares this machine's clock; a remote one may be ahead of the gateway's,
    // here by more than the run lasted (its `die` lookup once asked the engine for a window that
    // ended before it began, and the follow ended on the engine's 400).
    const now = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => now() - 60_000)

    const end = await followLog(engine, inspect, {}, undefined, sink)

    expect(end).toEqual({ exitCode: 3, state: 'exited' })
    expect(events().map((e) => e.data.text)).toEqual(['one', 'two'])
  })

  it('ends a run its engine removes as it stops (`docker run --rm`) with its lines and exit code', async () => {
    const id = await createDirect({
      name: uniqueName('autoremove'),
      cmd: ['sh', '-c', 'echo one; sleep 0.5; echo two; exit 5'],
      labels,
      hostConfig: { AutoRemove: true },
    })
    expect((await direct(`/containers/${id}/start`, { method: 'POST' })).status).toBe(204)
    const inspect = await inspectContainer(engine, id)
    const { sink, events } = collectingSink()

    const end = await followLog(engine, inspect, {}, undefined, sink)

    // `removed` once the engine has removed it, `removing` while it does: the removal comes after
    // the exit, so a gateway quicker than it still sees the container `exited`.
    expect(end?.exitCode).toBe(5)
    expect(['removed', 'exited', 'removing']).toContain(end?.state)
    expect(events().map((e) => e.data.text)).toEqual(['one', 'two'])
    expect((await direct(`/containers/${id}/json`)).status).toBe(404)
  })

  it('resumes exactly after a cursor', async () => {
    const id = await run('for i in 1 2 3 4 5; do echo line-$i; done')
    const inspect = await inspectContainer(engine, id)
    const first = collectingSink()
    await followLog(engine, inspect, {}, undefined, first.sink)
    const cursor = decodeCursor(first.events()[1]?.id ?? '')

    const resumed = collectingSink()
    await followLog(engine, inspect, {}, cursor, resumed.sink)

    expect(resumed.events().map((e) => e.data.text)).toEqual(['line-3', 'line-4', 'line-5'])
  })

  it('answers nothing, and stops following, once the sink stops reading', async () => {
    const id = await runDirect({
      name: uniqueName('follower'),
      cmd: ['sh', '-c', 'echo started; sleep 60'],
      labels,
      wait: false,
    })
    try {
      const inspect = await inspectContainer(engine, id)
      const { sink, events } = collectingSink(1)

      const end = await followLog(engine, inspect, {}, undefined, sink)

      expect(end).toBeUndefined()
      expect(events().map((e) => e.data.text)).toEqual(['started'])
    } finally {
      await direct(`/containers/${id}/kill`, { method: 'POST' })
    }
  })
})

/**
 * The engine's own follow, ended early as the engine ends it at times
 * (docs/engine-notes.md#the-end-of-a-run): its first whole frames up to `keepBytes`, then
 * nothing, though the body is read to its real end (the run's log has closed by then).
 * `afterFollow` gets the answer of the first inspect made after that end, before it is handed on.
 */
function earlyEndingFollow(
  keepBytes: number,
  afterFollow: (inspected: { State: { Restarting: boolean } }) => Promise<void> = async () => {},
) {
  const inner = createNodeTransport(
    engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
  )
  let followEnded = false
  let afterFollowRan = false
  const transport: EngineTransport = {
    description: inner.description,
    close: () => inner.close(),
    async fetch(request, options) {
      const response = await inner.fetch(request, options)
      const url = new URL(request.url)
      if (url.pathname.endsWith('/logs') && url.searchParams.get('follow') === '1') {
        const body = firstFrames(response.body!, keepBytes, () => {
          followEnded = true
        })
        return new Response(body, { status: response.status, headers: response.headers })
      }
      if (followEnded && !afterFollowRan && url.pathname.endsWith('/json')) {
        afterFollowRan = true
        const inspected = await response.text()
        await afterFollow(JSON.parse(inspected))
        return new Response(inspected, { status: response.status, headers: response.headers })
      }
      return response
    },
  }
  return new EngineClient(transport)
}

/** A multiplexed log body's whole frames up to `limit` bytes; the rest is read and dropped. */
function firstFrames(body: ReadableStream<Uint8Array>, limit: number, onEnd: () => void) {
  const reader = body.getReader()
  let pending = new Uint8Array(0)
  let kept = 0
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) {
          onEnd()
          controller.close()
          return
        }
        if (kept >= limit) continue
        const joined = new Uint8Array(pending.length + value.length)
        joined.set(pending)
        joined.set(value, pending.length)
        let whole = 0
        while (kept < limit && joined.length - whole >= 8) {
          const size = new DataView(joined.buffer, whole + 4, 4).getUint32(0)
          if (joined.length - whole < 8 + size) break
          whole += 8 + size
          kept += 8 + size
        }
        pending = joined.slice(whole)
        if (whole > 0) {
          controller.enqueue(joined.slice(0, whole))
          return
        }
      }
    },
    cancel: (reason) => reader.cancel(reason),
  })
}

/**
 * Follows (ending early) a run that fails and is restarted once: what the follow gave, and
 * whether the inspect after it saw the container restarting.
 */
async function followRestartingRun() {
  const id = await createDirect({
    name: uniqueName('follower'),
    // The follow starts before the lines do, and keeps up with them: it ends as the run does
    cmd: ['sh', '-c', 'sleep 1; seq 1 5000; exit 1'],
    labels,
    hostConfig: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 1 } },
  })
  expect((await direct(`/containers/${id}/start`, { method: 'POST' })).status).toBe(204)
  let restarting = false
  const cutting = earlyEndingFollow(16 * 1024, async (inspected) => {
    restarting = inspected.State.Restarting
  })
  try {
    const inspect = await inspectContainer(cutting, id)
    const { sink, events } = collectingSink()
    const end = await followLog(cutting, inspect, {}, undefined, sink)
    return { restarting, end, texts: events().map((e) => e.data.text) }
  } finally {
    await cutting.transport.close()
  }
}

const SEQ_LINES = 100_000
const seqTexts = () => Array.from({ length: SEQ_LINES }, (_, i) => String(i + 1))

/**
 * Follows a fresh run of `seq 1 SEQ_LINES` through a follow the engine ends early
 * (`earlyEndingFollow`); `afterFollow` runs, with the container's id, before the first inspect
 * after that end is handed on.
 */
async function followSeqEndingEarly(afterFollow?: (id: string) => Promise<void>) {
  const id = await runDirect({
    name: uniqueName('follower'),
    cmd: ['seq', '1', String(SEQ_LINES)],
    labels,
    wait: false,
  })
  const cutting = earlyEndingFollow(64 * 1024, async () => afterFollow?.(id))
  try {
    const inspect = await inspectContainer(cutting, id)
    const { sink, events } = collectingSink()
    const end = await followLog(cutting, inspect, {}, undefined, sink)
    return { id, end, events: events() }
  } finally {
    await cutting.transport.close()
  }
}

describe('followLog when the engine ends its follow early', () => {
  it('catches up to the end of the run, past FinishedAt', async () => {
    const { id, end, events } = await followSeqEndingEarly()

    expect(end).toEqual({ exitCode: 0, state: 'exited' })
    const texts = events.map((e) => e.data.text)
    expect(texts.length).toBe(SEQ_LINES)
    expect(texts.join(',') === seqTexts().join(',')).toBe(true)
    // What the catch-up must reach: the engine drains the run's output into its log after the
    // process exited, and FinishedAt is that exit (docs/engine-notes.md#the-end-of-a-run)
    const { State } = await inspectContainer(engine, id)
    const lastTime = Date.parse(events.at(-1)?.data.time ?? '')
    expect(lastTime - Date.parse(State.FinishedAt)).toBeGreaterThan(50)
  })

  it('stops at the end of a run that restarts (a restart policy)', async () => {
    // The inspect after the follow lands between the runs (the engine waits 100 ms before it
    // restarts the container) nearly always; up to three tries make sure one of them does
    let seenRestarting = 0
    for (let attempt = 0; attempt < 3 && seenRestarting === 0; attempt++) {
      const { restarting, end, texts } = await followRestartingRun()
      expect(texts).toEqual(Array.from({ length: 5000 }, (_, i) => String(i + 1)))
      if (restarting) expect(end).toEqual({ exitCode: null, state: 'restarting' })
      if (restarting) seenRestarting++
    }
    expect(seenRestarting).toBe(1)
  })

  it('stops at the end of the run when the next one starts right after it', async () => {
    // The container runs again between the inspect that saw it stopped and the catch-up read
    const { end, events } = await followSeqEndingEarly(async (id) => {
      await direct(`/containers/${id}/wait`, { method: 'POST' })
      expect((await direct(`/containers/${id}/start`, { method: 'POST' })).status).toBe(204)
      await direct(`/containers/${id}/wait`, { method: 'POST' })
    })

    expect(end).toEqual({ exitCode: 0, state: 'exited' })
    const texts = events.map((e) => e.data.text)
    expect(texts.length).toBe(SEQ_LINES)
    expect(texts.join(',') === seqTexts().join(',')).toBe(true)
  })
})

describe('readLogLines', () => {
  it('answers at most the bound of lines, and says it cut the log short', async () => {
    const id = await run('echo a; echo b; echo c')
    const inspect = await inspectContainer(engine, id)
    const signal = new AbortController().signal

    const all = await readLogLines(engine, inspect, {}, { maxLines: 10, maxBytes: 1000 }, signal)
    const cut = await readLogLines(engine, inspect, {}, { maxLines: 2, maxBytes: 1000 }, signal)

    expect(all.lines.map((l) => l.text)).toEqual(['a', 'b', 'c'])
    expect(all.truncated).toBe(false)
    expect(cut.lines.map((l) => l.text)).toEqual(['a', 'b'])
    expect(cut.truncated).toBe(true)
  })
})
