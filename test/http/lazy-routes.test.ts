import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { eventStreamRoute, isEventStream } from '../../src/http/authentication.ts'
import type { AppEnv } from '../../src/http/context.ts'
import { type LazyGroup, lazyGroups } from '../../src/http/lazy-routes.ts'

const onError = (error: Error) => new Response(`error: ${error.message}`, { status: 500 })

/** An app whose one middleware records what it saw after the route ran. */
function appWith(groups: LazyGroup<Hono<AppEnv>>[]) {
  const app = new Hono<AppEnv>()
  const seen: string[] = []
  app.use(async (c, next) => {
    seen.push(`stream: ${isEventStream(c)}`)
    await next()
    seen.push(`after: ${c.res.status}`)
  })
  const buildAll = lazyGroups(app, groups, onError)
  app.notFound((c) => c.text('no route', 404))
  app.onError(onError)
  return { app, seen, buildAll }
}

describe('route groups built on first use', () => {
  it('builds a group once, on its first request, and answers as its own router would', async () => {
    let builds = 0
    const group: LazyGroup<Hono<AppEnv>> = {
      routes: [
        ['GET', '/things/:id'],
        ['POST', '/things'],
      ],
      build: async () => {
        builds++
        const router = new Hono<AppEnv>()
        router.get(
          '/things/:id',
          async (c, next) => {
            c.header('x-checked', c.req.param('id'))
            await next()
          },
          (c) => c.json({ id: c.req.param('id') }),
        )
        router.post('/things', (c) => c.text('made', 201))
        return router
      },
    }
    const { app } = appWith([group])
    expect(builds).toBe(0)
    const [first, second] = await Promise.all([app.request('/things/a'), app.request('/things/b')])
    expect(builds).toBe(1)
    expect(await first.json()).toEqual({ id: 'a' })
    expect(second.headers.get('x-checked')).toBe('b')
    expect((await app.request('/things', { method: 'POST' })).status).toBe(201)
    expect((await app.request('/nothing')).status).toBe(404)
    expect(builds).toBe(1)
  })

  it('answers an error where it is thrown, and the layers before it go on with that answer', async () => {
    const group: LazyGroup<Hono<AppEnv>> = {
      routes: [['GET', '/fails']],
      build: async () => {
        const router = new Hono<AppEnv>()
        router.get(
          '/fails',
          async (c, next) => {
            await next()
            c.header('x-after-error', String(c.res.status))
          },
          () => {
            throw new Error('refused')
          },
        )
        return router
      },
    }
    const { app, seen } = appWith([group])
    const response = await app.request('/fails')
    expect(response.status).toBe(500)
    expect(await response.text()).toBe('error: refused')
    expect(response.headers.get('x-after-error')).toBe('500')
    expect(seen).toEqual(['stream: false', 'after: 500'])
  })

  it('marks an event stream before its group is built', async () => {
    const group: LazyGroup<Hono<AppEnv>> = {
      routes: [['GET', '/events', 'event stream']],
      build: async () => {
        const router = new Hono<AppEnv>()
        router.get('/events', eventStreamRoute, (c) => c.text('events'))
        return router
      },
    }
    const { app, seen } = appWith([group])
    expect(await (await app.request('/events')).text()).toBe('events')
    expect(seen[0]).toBe('stream: true')
  })

  it('fails to build a group whose router serves other routes than it lists', async () => {
    const router = new Hono<AppEnv>()
    router.get('/listed', (c) => c.text('ok'))
    router.get('/unlisted', (c) => c.text('ok'))
    const { app, buildAll } = appWith([{ routes: [['GET', '/listed']], build: async () => router }])
    const response = await app.request('/listed')
    expect(response.status).toBe(500)
    expect(await response.text()).toContain('GET /unlisted, which it does not list')
    await expect(buildAll()).rejects.toThrow('which it does not list')
    const lacking = appWith([
      {
        routes: [
          ['GET', '/listed'],
          ['DELETE', '/listed'],
        ],
        build: async () => {
          const one = new Hono<AppEnv>()
          one.get('/listed', (c) => c.text('ok'))
          return one
        },
      },
    ])
    await expect(lacking.buildAll()).rejects.toThrow('DELETE /listed, which it lacks')
  })

  it('builds every group in the order given, each once', async () => {
    const order: string[] = []
    const group = (name: string): LazyGroup<Hono<AppEnv>> => ({
      routes: [['GET', `/${name}`]],
      build: async () => {
        order.push(name)
        const router = new Hono<AppEnv>()
        router.get(`/${name}`, (c) => c.text(name))
        return router
      },
    })
    const { app, buildAll } = appWith([group('a'), group('b'), group('c')])
    await app.request('/c')
    const routers = await buildAll()
    expect(routers.map((r) => r.routes[0]?.path)).toEqual(['/a', '/b', '/c'])
    expect(order).toEqual(['c', 'a', 'b'])
  })
})
