import { describe, expect, it } from 'vitest'
import { ServiceLogEventEncoder, ServiceLogSplitter } from '../../src/streams/service-logs.ts'
import { SseParserStream } from '../support/sse-parse.ts'

const encoder = new TextEncoder()
const details = (task: string, node: string) =>
  `com.docker.swarm.node.id=${node},com.docker.swarm.service.id=svc,com.docker.swarm.task.id=${task}`

/** One multiplexed frame as the engine writes it (stream 1 stdout, 2 stderr). */
function frame(stream: 1 | 2, time: string, task: string, text: string): Uint8Array {
  const payload = encoder.encode(`${time} ${details(task, `node${task}`)} ${text}`)
  const out = new Uint8Array(8 + payload.length)
  out[0] = stream
  new DataView(out.buffer).setUint32(4, payload.length)
  out.set(payload, 8)
  return out
}

const time = (n: number) => `2026-12-03T17:00:00.${String(n).padStart(9, '0')}Z`

describe('service log lines', () => {
  it('say their task and node, and long lines are rejoined per task while tasks interleave', () => {
    const lines: string[] = []
    const splitter = new ServiceLogSplitter({
      tty: false,
      onLine: (stream, t, task, node, text) =>
        lines.push(`${stream} ${t} ${task} ${node} ${new TextDecoder().decode(text)}`),
    })
    const long = 'x'.repeat(16384)
    const chunks = [
      frame(1, time(1), 'a', long),
      frame(1, time(2), 'b', 'from b\n'),
      frame(1, time(1), 'a', 'end\n'),
      frame(2, time(3), 'b', 'oops\n'),
    ]
    // Any cut of the bytes reads the same
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
    let at = 0
    for (const c of chunks) {
      all.set(c, at)
      at += c.length
    }
    for (let i = 0; i < all.length; i += 1000) splitter.write(all.slice(i, i + 1000))
    splitter.end()
    expect(lines).toEqual([
      `stdout ${time(2)} b nodeb from b`,
      `stdout ${time(1)} a nodea ${long}end`,
      `stderr ${time(3)} b nodeb oops`,
    ])
  })

  it('encode as server-sent events with the id the caller gives, or none at all', async () => {
    const encode = new ServiceLogEventEncoder({
      tty: false,
      eventId: (task) => (task === 'skip' ? undefined : `id-${task}`),
    })
    encode.write(frame(1, time(1), 'skip', 'hidden\n'))
    encode.write(frame(1, time(2), 'a', 'say "hi"\n'))
    encode.end()
    const text = new TextDecoder().decode(encode.take())
    const events = []
    const reader = new ReadableStream<string>({
      start: (c) => {
        c.enqueue(text)
        c.close()
      },
    })
      .pipeThrough(new SseParserStream())
      .getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      events.push(value)
    }
    expect(events).toEqual([
      {
        event: 'stdout',
        id: 'id-a',
        data: JSON.stringify({ time: time(2), task: 'a', node: 'nodea', text: 'say "hi"' }),
      },
    ])
  })
})
