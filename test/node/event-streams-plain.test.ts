/**
 * Answers that cannot be event streams pass `withDirectEventStreams` untouched: reading their
 * `body` would make @hono/node-server build a full Fetch Response for every small request.
 */
import { describe, expect, it } from 'vitest'
import { pathOf, withDirectEventStreams } from '../../src/node/event-streams.ts'

/** A response whose body nobody may read. */
function untouchable(): { response: Response; reads: () => number } {
  let reads = 0
  const response = new Response('{"ok":true}')
  Object.defineProperty(response, 'body', {
    get() {
      reads += 1
      return null
    },
  })
  return { response, reads: () => reads }
}

describe('withDirectEventStreams', () => {
  it('hands other answers back as they are, without reading their body', async () => {
    for (const [method, url] of [
      ['GET', 'http://127.0.0.1:8080/v1/system/version'],
      ['GET', 'http://127.0.0.1:8080/v1/containers?label=stream'],
      ['POST', 'http://127.0.0.1:8080/v1/containers/abc/stream'],
    ] as const) {
      const { response, reads } = untouchable()
      const fetch = withDirectEventStreams(() => response)
      expect(await fetch(new Request(url, { method }), {})).toBe(response)
      expect(reads()).toBe(0)
    }
  })

  it('looks at the answers of requests that can be event streams', async () => {
    const { response, reads } = untouchable()
    const fetch = withDirectEventStreams(() => response)
    expect(await fetch(new Request('http://127.0.0.1:8080/v1/events?type=container'), {})).toBe(
      response,
    )
    expect(reads()).toBeGreaterThan(0)
  })
})

describe('pathOf', () => {
  it('is the path of an absolute URL, without its query', () => {
    expect(pathOf('http://127.0.0.1:8080/v1/events')).toBe('/v1/events')
    expect(pathOf('http://h/v1/containers/x/logs/stream?follow=1')).toBe(
      '/v1/containers/x/logs/stream',
    )
    expect(pathOf('https://h:1/?a=/b')).toBe('/')
    expect(pathOf('http://h')).toBe('/')
  })
})
