/**
 * @module Route groups built on their first request: the app registers each route's method and
 * path (and whether it is an event stream) up front, and the group's module, schemas and
 * validators are loaded and built only when one of its routes is first asked for, or when the
 * OpenAPI document is. A start builds none of them: on Bun that was about half of the CPU to the
 * first `/healthz` (bench/README.md, "Cold start, fourth session" and "Route groups on first use").
 */
import type { Context, Hono, MiddlewareHandler } from 'hono'
import { eventStreamRoute } from './authentication.ts'
import type { AppEnv } from './context.ts'

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/**
 * One route of a group, as the group registers it: its method, its path, and whether it is an
 * event stream (`scoped(…, { eventStream: true })`), which the authentication knows from the
 * matched routes before the group is built.
 */
export type LazyRoute = readonly [method: Method, path: string, kind?: 'event stream']

/** A group of routes: which ones, and how to build the router that serves them. */
export interface LazyGroup<G extends Hono<AppEnv>> {
  readonly routes: readonly LazyRoute[]
  readonly build: () => Promise<G>
}

/** Builds every group, each once, in the order given (what the OpenAPI document merges). */
export type BuildAll<G> = () => Promise<G[]>

/** A handler as the chain calls it: `next` resolves to the context, as in `hono/compose`. */
type Handler = (c: Context<AppEnv>, next: () => Promise<unknown>) => unknown

/**
 * Registers every group's routes on `app`, each as one handler that builds its group on the
 * group's first request and then runs the route's own handlers. Answers, statuses, the order of
 * middleware and errors stay what they were with the groups' routes on `app` itself: the routes
 * come in the same order, and a route's handlers run as Hono's own chain runs them (each error
 * answered by `onError` where it is thrown). A group whose routes are not the ones listed fails
 * to build, so a list cannot drift from its router unnoticed.
 */
export function lazyGroups<G extends Hono<AppEnv>>(
  app: Hono<AppEnv>,
  groups: readonly LazyGroup<G>[],
  onError: (error: Error, c: Context<AppEnv>) => Response | Promise<Response>,
): BuildAll<G> {
  const builds = groups.map((group) => {
    const runs = new Map<LazyRoute, Handler>()
    let built: Promise<G> | undefined
    const build = () =>
      (built ??= group.build().then((router) => {
        for (const [route, handlers] of routeHandlers(router, group.routes)) {
          runs.set(route, chain(handlers, onError))
        }
        return router
      }))
    for (const route of group.routes) {
      const [method, path, kind] = route
      const lazy: Handler = (c, next) => {
        const run = runs.get(route)
        return run ? run(c, next) : build().then(() => runs.get(route)!(c, next))
      }
      const handlers = kind ? [eventStreamRoute, lazy] : [lazy]
      app.on(method, [path], ...(handlers as MiddlewareHandler<AppEnv>[]))
    }
    return build
  })
  return async () => {
    const routers: G[] = []
    for (const build of builds) routers.push(await build())
    return routers
  }
}

/**
 * Each listed route's handlers in `router`, in order, the event-stream marker left out (the app
 * has it before the route's one handler); throws when the router has a route not listed or
 * lacks one that is.
 */
function routeHandlers(
  router: Hono<AppEnv>,
  routes: readonly LazyRoute[],
): Map<LazyRoute, Handler[]> {
  const found = new Map<LazyRoute, Handler[]>()
  const key = (method: string, path: string) => `${method} ${path}`
  const listed = new Map(routes.map((route) => [key(route[0], route[1]), route]))
  for (const { method, path, handler } of router.routes) {
    const route = listed.get(key(method, path))
    if (!route) throw new Error(`A route group serves ${key(method, path)}, which it does not list`)
    const handlers = found.get(route) ?? []
    found.set(route, handlers)
    if (handler === eventStreamRoute && route[2] && handlers.length === 0) continue
    handlers.push(handler as Handler)
  }
  for (const route of routes) {
    const handlers = found.get(route)
    if (!handlers?.length)
      throw new Error(`A route group lists ${key(route[0], route[1])}, which it lacks`)
  }
  return found
}

/**
 * A route's handlers as one: run as `hono/compose` runs a chain (an error answered by `onError`
 * in the layer that threw it, a response kept unless one is final; after the last handler, the
 * app's next), except that `c.req.routeIndex` stays the app's index of this route, from which
 * `c.req.param()` reads the route's parameters. The first handler runs in the app's own layer.
 */
function chain(
  handlers: readonly Handler[],
  onError: (error: Error, c: Context<AppEnv>) => Response | Promise<Response>,
): Handler {
  const [first, ...rest] = handlers as [Handler, ...Handler[]]
  if (rest.length === 0) return first
  return (c, next) => {
    let index = 0
    const dispatch = async (i: number): Promise<Context<AppEnv>> => {
      if (i <= index) throw new Error('next() called multiple times')
      index = i
      const handler = i < handlers.length ? handlers[i] : i === handlers.length ? next : undefined
      let res: unknown
      let isError = false
      if (handler) {
        try {
          res = await handler(c, () => dispatch(i + 1))
        } catch (error) {
          if (!(error instanceof Error)) throw error
          c.error = error
          res = await onError(error, c)
          isError = true
        }
      }
      if (res && (c.finalized === false || isError)) c.res = res as Response
      return c
    }
    return first(c, () => dispatch(1))
  }
}
