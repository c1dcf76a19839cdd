/**
 * The Node entry's batched stdout (src/node/stdout.ts) in front of a reader that stops reading:
 * a `Writable` whose writes complete only when the test lets them stands for that reader.
 */
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { stdoutLines } from '../../src/node/stdout.ts'

/** A stdout whose reader is stalled until `resume()`; `text` is what it has taken so far. */
function stalledOutput() {
  let text = ''
  let stalled = true
  const held: (() => void)[] = []
  const output = new Writable({
    decodeStrings: false,
    write(chunk: string, _encoding, done) {
      text += chunk
      if (stalled) held.push(done)
      else done()
    },
  })
  return {
    output,
    text: () => text,
    resume() {
      stalled = false
      for (const done of held.splice(0)) done()
    },
  }
}

const afterBatch = () => new Promise((resolve) => setTimeout(resolve, 40))
const line = (name: string) => JSON.stringify({ msg: name, padding: 'x'.repeat(300) })

describe('the Node entry’s stdout', () => {
  it('drops what a stalled reader cannot take beyond the bound, and says how many lines it lost', async () => {
    const out = stalledOutput()
    const lines = stdoutLines({ output: out.output, maxQueuedBytes: 1024 })
    for (const name of ['a1', 'a2', 'a3', 'a4']) lines.line(line(name))
    await afterBatch()
    // Over 1 KiB now waits for the reader: the next two batches are dropped, not queued
    for (const name of ['b1', 'b2', 'b3']) lines.line(line(name))
    await afterBatch()
    for (const name of ['c1', 'c2']) lines.line(line(name))
    await afterBatch()
    expect(out.output.writableLength).toBeLessThan(2 * 1024)
    out.resume()
    lines.line(line('d1'))
    await lines.drain()

    const written = out
      .text()
      .trimEnd()
      .split('\n')
      .map((text) => JSON.parse(text))
    expect(written.map((entry) => entry.msg)).toEqual([
      'a1',
      'a2',
      'a3',
      'a4',
      'log lines dropped: stdout was not read fast enough',
      'd1',
    ])
    expect(written[4]).toMatchObject({ level: 'warn', dropped: 5 })
    expect(Date.parse(written[4].time)).toBeGreaterThan(Date.now() - 60_000)
  })

  it('loses nothing while the reader keeps up', async () => {
    const out = stalledOutput()
    out.resume()
    const lines = stdoutLines({ output: out.output, maxQueuedBytes: 1024 })
    const names = Array.from({ length: 200 }, (_, i) => `line-${i}`)
    for (const name of names) lines.line(line(name))
    await lines.drain()
    const written = out.text().trimEnd().split('\n')
    expect(written.map((text) => JSON.parse(text).msg)).toEqual(names)
  })
})
