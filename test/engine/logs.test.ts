/**
 * The engine-side log follower on its own, against the real engine: no route, no HTTP response,
 * only a sink that collects what the follow writes.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { inspectContainer } from '../../src/engine/containers.ts'
import { decodeCursor } from '../../src/engine/log-cursor.ts'
import { followLog, type LogEventSink, readLogLines } from '../../src/engine/logs.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, runDirect } from '../support/engine.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const engine = new EngineClient(createNodeTransport(engineTargetFromEnv(process.env)))
afterAll(() => engine.transport.close())

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
