/**
 * @module Which engine a request is for: `/v1/engines/<name>/…` names one, any other `/v1/…`
 * path is the `default` engine's. Routes are defined once, without the prefix: the app routes a
 * request by its path with the prefix taken out ({@link routingPath}), and this middleware puts
 * the engine's scope in the context, where every route takes its engine from
 * ({@link engineScope}), never from a closure.
 *
 * An unknown engine and one the caller's policy does not allow answer the same 404.
 */
import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { getPath } from 'hono/utils/url'
import { DEFAULT_ENGINE, ENGINE_NAME } from '../config.ts'
import { mayUseEngine } from '../domain/policy.ts'
import type { Principal } from '../domain/principal.ts'
import type { EngineClient } from '../engine/client.ts'
import { badRequest, ProblemError } from '../errors.ts'
import type { EventHub } from '../events/hub.ts'
import type { ContainerModel } from '../model/containers.ts'
import type { WritePositions } from '../model/positions.ts'
import type { ServiceOwners } from '../model/services.ts'
import type { AppEnv } from './context.ts'

/** Everything one engine has of its own: its client (transport, API version), events, model. */
export interface EngineScope {
  readonly name: string
  readonly client: EngineClient
  /** Its one upstream `/events` stream and replay ring. */
  readonly hub: EventHub
  /** Its container read model (none with `readModel: false`). */
  readonly model: ContainerModel | undefined
  /** Where instances learn of each other's changes on this engine. */
  readonly positions: WritePositions | undefined
  /** Who owns which of its Swarm services, as far as this instance has learnt (for events). */
  readonly services: ServiceOwners
}

export type EngineScopes = ReadonlyMap<string, EngineScope>

const PREFIX = '/v1/engines/'

/**
 * What {@link routingPath} found in a request's path, kept on the request itself: the sent path
 * is read three times or more per request (the guard's action, the request log, the engine
 * scope, problems), and parsing it each time cost the per-engine list 4–5k more instructions
 * than the unprefixed one under callgrind (`bench/instructions.mjs --prefixed`, bench/README.md
 * "Per-request CPU (issue 17, branch smallreq2)"). Symbol-keyed, set on every routed request in
 * the same order, so the request objects keep one shape.
 */
const SENT_PATH = Symbol('dockgate.sentPath')
const NAMED_ENGINE = Symbol('dockgate.namedEngine')

interface Routed {
  [SENT_PATH]?: string
  [NAMED_ENGINE]?: string | undefined
}

/**
 * The engine a path names (`/v1/engines/<name>/…`), or undefined for every other path
 * (`/v1/engines` itself, `/v1/engines/<name>` with nothing after it).
 */
export function engineNamed(path: string): string | undefined {
  if (!path.startsWith(PREFIX)) return undefined
  const end = path.indexOf('/', PREFIX.length)
  return end === -1 ? undefined : path.slice(PREFIX.length, end)
}

/**
 * The path the app routes by (Hono's `getPath`): `/v1/engines/<name>/rest` routes as `/v1/rest`,
 * so that each route is defined once and serves every engine. The path as sent and the engine it
 * names are kept on the request for {@link sentPath} and {@link selectScope}.
 */
export function routingPath(request: Request): string {
  const path = getPath(request)
  const routed = request as Request & Routed
  routed[SENT_PATH] = path
  if (!path.startsWith(PREFIX)) {
    routed[NAMED_ENGINE] = undefined
    return path
  }
  const end = path.indexOf('/', PREFIX.length)
  if (end === -1) {
    routed[NAMED_ENGINE] = undefined
    return path
  }
  routed[NAMED_ENGINE] = path.slice(PREFIX.length, end)
  return `/v1${path.slice(end)}`
}

/** The path the client sent (what `instance`, audit lines and tickets name), prefix and all. */
export const sentPath = (c: Context): string => {
  const request = c.req.raw as Request & Routed
  return request[SENT_PATH] ?? getPath(request)
}

/** The engine the sent path names, as {@link engineNamed} says. */
const namedEngine = (c: Context): string | undefined => {
  const request = c.req.raw as Request & Routed
  return SENT_PATH in request ? request[NAMED_ENGINE] : engineNamed(getPath(request))
}

/** 404, for an engine that does not exist and for one the caller may not use alike. */
export const noSuchEngine = (name: string) =>
  new ProblemError(404, 'not-found', { detail: `No such engine: ${name}` })

/** Whether the principal's policy lets it use the engine. */
export const mayUse = (principal: Principal, name: string) => mayUseEngine(principal.policy, name)

/**
 * Puts the request's engine scope in the context (after authentication). A path that names an
 * engine the caller may not use (or none) is a 404 at once, before anything else runs; a path
 * without a prefix is the `default` engine's, refused only when a route asks for it
 * ({@link engineScope}): the engine list, stream tickets and merged events need none.
 */
export function selectEngine(scopes: EngineScopes) {
  return createMiddleware<AppEnv>(function selectEngine(c, next) {
    selectScope(c, scopes)
    return next()
  })
}

/** What {@link selectEngine} does before it goes on: throws 400 or 404, or sets the scope. */
export function selectScope(c: Context<AppEnv>, scopes: EngineScopes): void {
  const named = namedEngine(c)
  const scope = scopes.get(named ?? DEFAULT_ENGINE)
  // A configured engine's name is a valid one (`createApp` refuses others): only a name that
  // is none of them needs the check.
  if (scope === undefined && named !== undefined && !ENGINE_NAME.test(named)) {
    // Not a name at all (as the document's `engine` parameter says): like any invalid input.
    throw badRequest('Invalid param: param.engine', [
      { name: 'param.engine', reason: 'an engine name ([a-z0-9][a-z0-9_-]*, at most 63)' },
    ])
  }
  if (scope && mayUse(c.get('principal'), scope.name)) c.set('engine', scope)
  else if (named !== undefined) throw noSuchEngine(named)
}

/** The engine of this request: the route's one way to reach an engine. */
export function engineScope(c: Context<AppEnv>): EngineScope {
  const scope = c.get('engine') as EngineScope | undefined
  if (!scope) throw noSuchEngine(DEFAULT_ENGINE)
  return scope
}
