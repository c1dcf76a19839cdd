import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { routingPath, sentPath } from '../../src/http/engines.ts'

/** What a route sees of the two paths: the one it was routed by and the one the client sent. */
const seen = (app: Hono) => {
  app.get('/v1/*', (c) => c.json({ routed: c.req.path, sent: sentPath(c) }))
  return async (path: string) => (await app.request(path)).json()
}

describe('routingPath and sentPath', () => {
  it('route a prefixed path without its prefix and keep the path as sent, each request its own', async () => {
    const get = seen(new Hono({ getPath: routingPath }))
    expect(await get('/v1/engines/b/containers/x%20y?all=1')).toEqual({
      routed: '/v1/containers/x y',
      sent: '/v1/engines/b/containers/x y',
    })
    expect(await get('/v1/containers?all=1')).toEqual({
      routed: '/v1/containers',
      sent: '/v1/containers',
    })
    // `/v1/engines/<name>` with nothing after it names no engine: routed as sent.
    expect(await get('/v1/engines/b')).toEqual({ routed: '/v1/engines/b', sent: '/v1/engines/b' })
  })

  it('give the path as sent in an app that routes by Hono’s own getPath too', async () => {
    const get = seen(new Hono())
    expect(await get('/v1/engines/b/containers')).toEqual({
      routed: '/v1/engines/b/containers',
      sent: '/v1/engines/b/containers',
    })
  })
})
