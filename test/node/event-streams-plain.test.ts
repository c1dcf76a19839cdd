/**
 * Answers that cannot be event streams pass the app's front middleware (src/http/front.ts) and its
 * `eventStreamOutput` port untouched:
 * reading their `body` would make @hono/node-server build a full Fetch Response for every small
 * request.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { eventStreamRoute } from '../../src/http/authentication.ts'
import type { AppEnv } from '../../src/http/context.ts'
import { frontOnly } from '../support/front.ts'

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

/** An app answering `response` everywhere, behind the front middleware and its port. */
function appAnswering(response: Response) {
  let handedOver = 0
  const app = new Hono<AppEnv>()
  app.use(
    frontOnly({
      eventStreamOutput: () => {
        handedOver++
        return undefined
      },
    }),
  )
  // `/v1/events` is declared an event stream, as the gateway's routes declare theirs.
  app.get('/v1/events', eventStreamRoute, () => response)
  app.all('*', () => response)
  return { app, handedOver: () => handedOver }
}

describe('the event stream hand-over', () => {
  it('hands other answers back as they are, without reading their body', async () => {
    for (const [method, url] of [
      ['GET', 'http://127.0.0.1:8080/v1/system/version'],
      ['GET', 'http://127.0.0.1:8080/v1/containers?label=stream'],
      ['POST', 'http://127.0.0.1:8080/v1/containers/abc/stream'],
    ] as const) {
      const { response, reads } = untouchable()
      const { app, handedOver } = appAnswering(response)
      expect(await app.fetch(new Request(url, { method }), {})).toBe(response)
      expect(reads()).toBe(0)
      expect(handedOver()).toBe(0)
    }
  })

  it('looks at the answers of requests that can be event streams', async () => {
    const { response, reads } = untouchable()
    const { app } = appAnswering(response)
    expect(await app.fetch(new Request('http://127.0.0.1:8080/v1/events?type=container'), {})).toBe(
      response,
    )
    expect(reads()).toBeGreaterThan(0)
  })
})
