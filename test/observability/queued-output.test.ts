import { describe, expect, it } from 'vitest'
import { QueuedOutput } from '../../src/observability/queued-output.ts'

/**
 * A byte sink like `Deno.stdout.write` whose reader is stalled until `resume()`, and that takes
 * at most `maxPerWrite` bytes a write (partial writes, as a pipe may make).
 */
function stalledSink(maxPerWrite = Number.POSITIVE_INFINITY) {
  const decoder = new TextDecoder()
  let text = ''
  let stalled = true
  let calls = 0
  const held: (() => void)[] = []
  const sink = (bytes: Uint8Array) => {
    calls++
    const taken = Math.min(bytes.length, maxPerWrite)
    const take = () => {
      text += decoder.decode(bytes.subarray(0, taken))
      return taken
    }
    if (!stalled) return Promise.resolve(take())
    return new Promise<number>((resolve) => held.push(() => resolve(take())))
  }
  return {
    sink,
    text: () => text,
    calls: () => calls,
    resume() {
      stalled = false
      for (const release of held.splice(0)) release()
    },
  }
}

const line = (name: string) => `${JSON.stringify({ msg: name, padding: 'x'.repeat(300) })}\n`
const messages = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((entry) => JSON.parse(entry))

describe('QueuedOutput', () => {
  it('writes in order, one write at a time, the whole of each chunk even when a write takes part of it', async () => {
    const out = stalledSink(100)
    const output = new QueuedOutput(out.sink)
    const names = Array.from({ length: 20 }, (_, i) => `line-${i}`)
    for (const name of names) output.write(line(name))
    // One write has started; the rest waits behind it
    expect(out.calls()).toBe(1)
    out.resume()
    await output.drained()
    expect(messages(out.text()).map((entry) => entry.msg)).toEqual(names)
    expect(output.queuedBytes).toBe(0)
  })

  it('drops what a stalled reader cannot take beyond the bound, and says how many lines were lost', async () => {
    const out = stalledSink()
    const output = new QueuedOutput(out.sink, { maxQueuedBytes: 1024 })
    for (const name of ['a1', 'a2', 'a3', 'a4']) output.write(line(name))
    // Over 1 KiB waits now: these are dropped, not queued
    output.write(line('b1') + line('b2'))
    output.write(line('c1'))
    expect(output.queuedBytes).toBeLessThan(1024 + 400)
    out.resume()
    await output.drained()
    output.write(line('d1'))
    await output.drained()
    const written = messages(out.text())
    expect(written.map((entry) => entry.msg)).toEqual([
      'a1',
      'a2',
      'a3',
      'a4',
      'log lines dropped: stdout was not read fast enough',
      'd1',
    ])
    expect(written[4]).toMatchObject({ level: 'warn', dropped: 3 })
  })

  it('reports a failing sink and goes on with the next chunk', async () => {
    const errors: unknown[] = []
    let fail = true
    let text = ''
    const output = new QueuedOutput(
      async (bytes) => {
        if (fail) {
          fail = false
          throw new Error('broken pipe')
        }
        text += new TextDecoder().decode(bytes)
        return bytes.length
      },
      { onError: (error) => errors.push(error) },
    )
    output.write(line('lost'))
    output.write(line('kept'))
    await output.drained()
    expect(errors).toEqual([new Error('broken pipe')])
    expect(messages(text).map((entry) => entry.msg)).toEqual(['kept'])
    expect(output.queuedBytes).toBe(0)
  })

  it('hands over what has not started, for a last synchronous write', () => {
    const out = stalledSink()
    const output = new QueuedOutput(out.sink)
    output.write(line('in-flight'))
    output.write(line('waiting-1'))
    output.write(line('waiting-2'))
    const taken = output.takeQueued().map((bytes) => new TextDecoder().decode(bytes))
    expect(taken.map((text) => JSON.parse(text).msg)).toEqual(['waiting-1', 'waiting-2'])
    expect(output.queuedBytes).toBe(line('in-flight').length)
  })
})
