import { describe, expect, it } from 'vitest'
import { ProblemError } from '../../src/errors.ts'
import { endEventStream, type SseSink, sseResponse } from '../../src/http/sse.ts'
import { onBodyEnd } from '../../src/streams/on-end.ts'

const settings = { heartbeatMs: 60_000, retryMs: 1_500 }
const toProblem = (error: unknown) =>
  error instanceof ProblemError ? error : new ProblemError(502, 'engine-error', { cause: error })
const bytes = (text: string) => new TextEncoder().encode(text)

describe('sseResponse', () => {
  it('writes encoded chunks verbatim between the opening comment and the end', async () => {
    const response = sseResponse(settings, toProblem, async (sink) => {
      expect(await sink.send({ event: 'a', data: '1' })).toBe(true)
      expect(await sink.sendEncoded(bytes('event: b\ndata: 2\n\nevent: c\ndata: 3\n\n'))).toBe(true)
    })
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(await response.text()).toBe(
      ': stream open\nretry: 1500\n\nevent: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\ndata: 3\n\n',
    )
  })

  it('answers false to sendEncoded once the client has left, and aborts the producer', async () => {
    let sink!: SseSink
    const produced = new Promise<void>((resolve) => {
      sseResponse(settings, toProblem, async (s) => {
        sink = s
        resolve()
        await new Promise((wake) => s.signal.addEventListener('abort', wake))
      })
        .body?.cancel()
        .catch(() => {})
    })
    await produced
    expect(sink.signal.aborted).toBe(true)
    expect(await sink.sendEncoded(bytes('data: late\n\n'))).toBe(false)
  })

  it('holds sendEncoded while the client reads nothing, and releases it when it reads', async () => {
    let released = 0
    const response = sseResponse({ ...settings, bufferedBytes: 1 }, toProblem, async (sink) => {
      for (let i = 0; i < 4; i++) {
        await sink.sendEncoded(bytes(`data: ${i}\n\n`))
        released++
      }
    })
    await new Promise((resolve) => setTimeout(resolve, 20))
    // The opening comment fills the buffer of 1 byte: the producer waits after its first chunk.
    expect(released).toBe(0)
    const text = await response.text()
    expect(released).toBe(4)
    expect(text.endsWith('data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n')).toBe(true)
  })

  it('writeEncoded tells at once whether there is room; whenWritable waits for it, or for the end', async () => {
    const answers: boolean[] = []
    let sink!: SseSink
    const response = sseResponse({ ...settings, bufferedBytes: 64 }, toProblem, async (s) => {
      sink = s
      // 17 bytes a message after the opening comment's 27: the third passes the 64
      for (let i = 0; i < 3; i++) answers.push(s.writeEncoded(bytes(`data: message-${i}\n\n`)))
      answers.push(await s.whenWritable())
      answers.push(s.writeEncoded(bytes('data: last\n\n')))
    })
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(answers).toEqual([true, true, false])
    const text = await response.text()
    expect(answers).toEqual([true, true, false, true, true])
    expect(text.endsWith('data: message-2\n\ndata: last\n\n')).toBe(true)
    expect(sink.writeEncoded(bytes('data: after the end\n\n'))).toBe(false)
    expect(await sink.whenWritable()).toBe(false)
  })

  it('reports its end to onBodyEnd without being wrapped: once when the producer is done', async () => {
    let ends = 0
    let finish!: () => void
    const response = sseResponse(settings, toProblem, () => new Promise((r) => (finish = r)))
    const body = response.body!
    expect(onBodyEnd(body, () => ends++)).toBe(body)
    expect(ends).toBe(0)
    finish()
    await new Response(body).text()
    expect(ends).toBe(1)
    onBodyEnd(body, () => ends++)
    expect(ends).toBe(2)
  })

  it('reports its end to onBodyEnd once when the client leaves', async () => {
    let ends = 0
    const response = sseResponse(settings, toProblem, (sink) => {
      return new Promise((resolve) => sink.signal.addEventListener('abort', () => resolve()))
    })
    const body = onBodyEnd(response.body!, () => ends++)
    await body.cancel()
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(ends).toBe(1)
  })

  it('names a failure `problem`, not `error` (EventSource’s own connection-error event)', async () => {
    const response = sseResponse(settings, toProblem, async () => {
      throw new ProblemError(502, 'engine-error', { detail: 'The engine broke off' })
    })
    const text = await response.text()
    expect(text).toMatch(
      /\nevent: problem\ndata: \{[^\n]*"type":"urn:dockgate:problem:engine-error"/,
    )
    expect(text).not.toMatch(/event: error/)
  })

  it('ends from outside with a last event, and stops the producer (a revoked credential)', async () => {
    let sink!: SseSink
    const response = sseResponse(settings, toProblem, (s) => {
      sink = s
      return new Promise((resolve) => s.signal.addEventListener('abort', () => resolve()))
    })
    expect(endEventStream(response.body!, { event: 'revoked', data: '{"reason":"revoked"}' })).toBe(
      true,
    )
    expect(await response.text()).toMatch(/event: revoked\ndata: \{"reason":"revoked"\}\n\n$/)
    expect(sink.signal.aborted).toBe(true)
    expect(endEventStream(new ReadableStream(), { event: 'revoked', data: '{}' })).toBe(false)
  })
})
