import { describe, expect, it } from 'vitest'
import { onBodyEnd } from '../../src/streams/on-end.ts'
import { type ChunkSink, PushedByteStream } from '../../src/streams/pushed.ts'

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (chunk: Uint8Array) => new TextDecoder().decode(chunk)

/** A stream and what it told its source. */
function fed() {
  const calls: string[] = []
  const stream = new PushedByteStream({
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
    cancel: (reason) => calls.push(`cancel ${String(reason)}`),
  })
  let ends = 0
  stream.onEnd(() => ends++)
  return { stream, calls, ends: () => ends }
}

/** A sink that records what it is handed, in order. */
function recording() {
  const got: string[] = []
  const sink: ChunkSink = {
    chunk: (chunk) => got.push(text(chunk)),
    end: (error) => got.push(error === undefined ? 'end' : `error ${String(error)}`),
  }
  return { sink, got }
}

describe('PushedByteStream', () => {
  it('reads as any byte stream: held chunks first, in order, the source paused while nobody reads', async () => {
    const { stream, calls, ends } = fed()
    stream.push(bytes('a'))
    stream.push(bytes('b'))
    expect(calls).toEqual(['pause', 'pause'])
    const reader = stream.getReader()
    expect(text((await reader.read()).value!)).toBe('a')
    expect(text((await reader.read()).value!)).toBe('b')
    const next = reader.read()
    await Promise.resolve()
    expect(calls.at(-1)).toBe('resume')
    stream.push(bytes('c'))
    expect(text((await next).value!)).toBe('c')
    stream.close()
    expect(await reader.read()).toEqual({ done: true, value: undefined })
    expect(ends()).toBe(1)
  })

  it('gives a read the chunks held before the body failed, then the failure', async () => {
    const { stream, ends } = fed()
    stream.push(bytes('a'))
    stream.error(new Error('broken'))
    expect(ends()).toBe(0)
    const reader = stream.getReader()
    expect(text((await reader.read()).value!)).toBe('a')
    await expect(reader.read()).rejects.toThrow('broken')
    expect(ends()).toBe(1)
  })

  it('pushes to a sink: the held chunks at once, then each chunk within push(), then the end', () => {
    const { stream, calls, ends } = fed()
    stream.push(bytes('a'))
    const { sink, got } = recording()
    expect(stream.pushTo(sink)).toBeDefined()
    expect(got).toEqual(['a'])
    expect(calls).toEqual(['pause', 'resume'])
    stream.push(bytes('b'))
    expect(got).toEqual(['a', 'b'])
    stream.close()
    expect(got).toEqual(['a', 'b', 'end'])
    expect(ends()).toBe(1)
    // Nothing after the end.
    stream.push(bytes('c'))
    stream.error(new Error('late'))
    expect(got).toEqual(['a', 'b', 'end'])
    expect(ends()).toBe(1)
  })

  it('lets its sink pause and resume the source, and still hands it what was read meanwhile', () => {
    const { stream, calls } = fed()
    const { sink, got } = recording()
    const chunks = stream.pushTo(sink)!
    chunks.pause()
    expect(calls).toEqual(['resume', 'pause'])
    // The adapter may have read one more before it stopped: the sink gets it, nothing is lost.
    stream.push(bytes('a'))
    expect(got).toEqual(['a'])
    chunks.resume()
    expect(calls).toEqual(['resume', 'pause', 'resume'])
    stream.close()
    // Over: the source is not touched again.
    chunks.pause()
    chunks.resume()
    expect(calls).toEqual(['resume', 'pause', 'resume'])
  })

  it('tells the sink of a failure, also one that came before pushTo', () => {
    const { stream } = fed()
    stream.push(bytes('a'))
    stream.error('broken')
    const { sink, got } = recording()
    stream.pushTo(sink)
    expect(got).toEqual(['a', 'error broken'])
  })

  it('pushes to one sink only, and not once the stream is read', () => {
    const pushed = fed().stream
    expect(pushed.pushTo(recording().sink)).toBeDefined()
    expect(pushed.pushTo(recording().sink)).toBeUndefined()
    expect(pushed.locked).toBe(true)
    const read = fed().stream
    read.getReader()
    expect(read.pushTo(recording().sink)).toBeUndefined()
  })

  it('cancelled by its sink: the source is dropped, the sink hears no more, the end is told once', async () => {
    const { stream, calls, ends } = fed()
    const { sink, got } = recording()
    const taken = stream.pushTo(sink)!
    taken.cancel('bored')
    await Promise.resolve()
    expect(calls.at(-1)).toBe('cancel bored')
    stream.push(bytes('a'))
    stream.close()
    expect(got).toEqual([])
    expect(ends()).toBe(1)
  })

  it('cancelled by its reader: the source is dropped and the end is told once', async () => {
    const { stream, calls, ends } = fed()
    await stream.getReader().cancel('gone')
    expect(calls).toEqual(['cancel gone'])
    stream.close()
    expect(ends()).toBe(1)
    let late = 0
    stream.onEnd(() => late++)
    expect(late).toBe(1)
  })

  it('is not wrapped to be watched: onBodyEnd listens to it as it is', () => {
    const { stream } = fed()
    let ended = 0
    expect(onBodyEnd(stream, () => ended++)).toBe(stream)
    stream.pushTo(recording().sink)
    stream.close()
    expect(ended).toBe(1)
  })
})
