/**
 * @module `GET /v1/events`: the engine's events as server-sent events, curated, filtered and
 * resumable, all served from each engine's one upstream (`EventHub`); with `engine=`, several
 * engines' events merged into one stream (events.relay.ts).
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { TICKET_MAX_LENGTH } from '../auth/tickets.ts'
import { globMatches } from '../domain/policy.ts'
import { refuseSecretSelectors } from '../domain/redaction.ts'
import { badRequest } from '../errors.ts'
import { EVENT_TYPES } from '../events/event.ts'
import type { SubscribeOptions, SubscriptionItem } from '../events/hub.ts'
import type { AppEnv } from '../http/context.ts'
import {
  type EngineScopes,
  engineNamed,
  engineScope,
  mayUse,
  noSuchEngine,
  sentPath,
} from '../http/engines.ts'
import { RevokedDataSchema } from '../http/open-streams.schemas.ts'
import {
  eventStreamHead,
  type SseSink,
  type StreamDependencies,
  sseResponse,
  sseSettings,
} from '../http/sse.ts'
import type { ServiceOwners } from '../model/services.ts'
import {
  CONTAINER_REF,
  ENGINE_PROBLEMS,
  EngineTimeParam,
  ProblemSchema,
  problems,
  resumeFrom,
  router,
  scoped,
  strictQuery,
  TIME_HELP,
} from './common.ts'
import { ImageRef, LabelSelector, MAX_LABEL_SELECTORS } from './containers.schemas.ts'
import {
  EventEncoder,
  type ItemSource,
  MERGED_ID,
  type MergedItem,
  type MergedPositions,
  mergedSource,
  parseMergedId,
  relay,
  type Visibility,
  visibleTo,
} from './events.relay.ts'

const EventTypeSchema = z
  .enum(EVENT_TYPES)
  .openapi('EventType', { description: 'A Docker Engine event type (API 1.41)' })
const ActionSchema = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'an event action, e.g. `start`')
const ContainerRefSchema = z
  .string()
  .regex(CONTAINER_REF, 'a container id, id prefix or name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)')

/** Resume points are one engine's event id (a timeNano), or a merged stream's (see README). */
const EventIdSchema = z
  .string()
  .max(64 * 85)
  .refine((id) => /^\d{0,20}$/.test(id) || MERGED_ID.test(id), {
    message: 'an event id: a timeNano (digits), or a merged stream’s `<engine>:<timeNano>,…`',
  })

/** A query parameter that may be repeated (as often as a label selector); always an array after validation. */
function repeatable<T extends z.ZodType<string>>(item: T, description: string) {
  return z
    .union([item, z.array(item).max(MAX_LABEL_SELECTORS)])
    .optional()
    .transform((value): z.output<T>[] =>
      value === undefined ? [] : Array.isArray(value) ? value : [value],
    )
    .openapi({ description, param: { style: 'form', explode: true } })
}

const EventsQuery = strictQuery({
  type: repeatable(EventTypeSchema, 'Event types; repeat for several (any of them)'),
  action: repeatable(
    ActionSchema,
    'Actions (`create`, `start`, `die`, `exec_start`, `health_status`…); repeat for several (any of them)',
  ),
  container: repeatable(
    ContainerRefSchema,
    'Container id, id prefix or name; repeat for several (any of them). Only container events match',
  ),
  image: repeatable(ImageRef, 'Image reference or id; repeat for several (any of them)'),
  label: repeatable(
    LabelSelector,
    '`key` or `key=value` on the actor’s attributes (container labels); repeat to require several. ' +
      'A value on a secret-looking key (the secretLabelPatterns setting) is refused: such values are redacted',
  ),
  since: EngineTimeParam.optional().openapi({
    description: `Replay the events the gateway holds from this time on (inclusive). ${TIME_HELP}. Last-Event-ID and cursor win`,
  }),
  cursor: EventIdSchema.optional().openapi({
    description:
      'Resume after this event (its id), as Last-Event-ID does; the header wins. For a page that opens a new EventSource (with a new ticket) where the last one stopped',
  }),
  engine: z
    .string()
    .regex(/^[a-z0-9_*?-]{1,63}$/, 'an engine name, or a glob (`*`)')
    .optional()
    .openapi({
      description:
        'Merge the events of every engine this names (`*`: all) that the caller may use into one stream, each event naming its `engine`; its ids then hold each engine’s position (`<engine>:<timeNano>,…`), so one Last-Event-ID resumes them all. On `/v1/events` only (an engine’s own path names its engine)',
      example: '*',
    }),
  ticket: z.string().max(TICKET_MAX_LENGTH).optional().openapi({
    description:
      'A stream ticket (POST /v1/stream-tickets), for EventSource clients that cannot send headers',
  }),
})

const EngineEventSchema = z
  .object({
    type: EventTypeSchema,
    action: z.string().openapi({
      description:
        'The engine’s action up to its first colon: `exec_start: sh -c …` is `exec_start`, so command lines never show',
      example: 'start',
    }),
    actor: z.object({
      id: z
        .string()
        .openapi({ description: 'The object’s id (a container id for container events)' }),
      name: z.string().nullable().openapi({ example: 'web' }),
      attributes: z.record(z.string(), z.string().nullable()).openapi({
        description:
          'The engine’s actor attributes: for containers their labels, `name`, `image`…; values of secret-looking keys are null',
      }),
    }),
    time: z.string().openapi({
      description: 'When it happened, nanosecond precision',
      example: '2026-11-29T03:40:53.902667431Z',
    }),
    engine: z.string().openapi({
      description: 'The engine it happened on (`default`, or a configured engine’s name)',
      example: 'default',
    }),
    timeNano: z.string().openapi({
      description:
        'The same instant in nanoseconds since the epoch, exact (too large for a JSON number); also the event id',
      example: '1795923285422325136',
    }),
  })
  .openapi('EngineEvent')

/** An event's `data` as a client reads it (the encoder in events.relay.ts writes it). */
export type EngineEventData = z.infer<typeof EngineEventSchema>

const ResyncData = z
  .object({
    engine: z.string().optional().openapi({
      description: 'In a merged stream: the engine whose events this is about',
    }),
    reason: z.enum(['gap', 'overflow']).openapi({
      description:
        '`gap`: events may be missing before what follows (rebuild state from a listing; the stream goes on). `overflow`: this client read too slowly and the stream ends (reconnect with Last-Event-ID)',
    }),
  })
  .openapi('EventResyncData')

/** Documents the stream as the events it carries; each event's `data` is JSON. */
const EventStreamEvent = z
  .union([
    z.object({ event: EventTypeSchema, id: z.string(), data: EngineEventSchema }),
    z.object({ event: z.literal('resync'), data: ResyncData }),
    z.object({ event: z.literal('problem'), data: ProblemSchema }),
    z.object({ event: z.literal('shutdown'), data: z.object({ reason: z.string() }) }),
    z.object({ event: z.literal('revoked'), data: RevokedDataSchema }),
  ])
  .openapi('EventStreamEvent', {
    description:
      'One server-sent event of the engine event stream: `event:` the event type (or `resync`, `problem`, `shutdown`, `revoked`), `id:` its timeNano, `data:` JSON',
  })

const eventsRoute = createRoute({
  method: 'get',
  path: '/v1/events',
  operationId: 'streamEvents',
  tags: ['events'],
  summary: 'Follow the Docker Engine’s events as server-sent events',
  description: [
    'One event per engine event: `event:` its type (`container`, `image`, `network`…), `id:` its',
    '`timeNano`, `data:` an `EngineEvent`. Filters are ANDed across keys and ORed within one',
    '(`label` values must all match). Reconnect with `Last-Event-ID` to receive exactly the events',
    'after it (or pass `cursor`, e.g. from a new `EventSource`), or pass `since` to replay from a',
    'time: the gateway keeps far more events than the',
    'engine’s own 256. When it cannot prove that nothing is missing (the point is older than what',
    'it holds, or the engine restarted) it sends `event: resync` with `{"reason":"gap"}` first and',
    'goes on with live events. A client that reads too slowly gets `resync` with',
    '`{"reason":"overflow"}` and the stream ends. Also `event: problem` (a `Problem`), `event: shutdown`',
    'when the gateway stops, `event: revoked` when the credential that opened it is revoked or',
    'changed (a config reload), and `: heartbeat` comments.',
  ].join(' '),
  ...scoped('events:read', { eventStream: true }),
  request: {
    query: EventsQuery,
    headers: z.object({
      'last-event-id': EventIdSchema.optional().openapi({
        description: 'Resume after this event (its id: a timeNano, or a merged stream’s positions)',
      }),
    }),
  },
  responses: {
    200: {
      description: 'The event stream',
      content: { 'text/event-stream': { schema: EventStreamEvent } },
    },
    ...problems(400, ...ENGINE_PROBLEMS),
  },
})

export function eventRoutes(scopes: EngineScopes, deps: StreamDependencies) {
  const app = router()
  const events = new EventEncoder()

  app.openapi(eventsRoute, async (c) => {
    const { since, cursor, ticket: _ticket, engine: pattern, ...filter } = c.req.valid('query')
    refuseSecretSelectors(filter.label ?? [], deps.settings.secretLabelPatterns, 'query.label')
    const resume = resumeFrom(c.req.valid('header')['last-event-id'], cursor)
    const lastEventId = resume.text
    if (pattern !== undefined) {
      const options = { filter, since, lastEventId, resumeParameter: resume.parameter }
      return mergedEvents(c, scopes, pattern, options, deps, events)
    }
    if (lastEventId !== undefined && !/^\d+$/.test(lastEventId)) {
      throw badRequest('A merged stream’s event id resumes a merged stream (`engine=`) only', [
        { name: resume.parameter, reason: 'not an event id of this stream' },
      ])
    }
    const { name, hub, services } = engineScope(c)
    if (c.req.method === 'HEAD') return eventStreamHead()
    // Subscribe first, so nothing that happens while the upstream connects is missed.
    const subscription = hub.subscribe({ filter, since, lastEventId })
    try {
      // Only a hub still connecting makes the client wait; only then is its signal needed (on
      // Node, reading it builds a whole Fetch Request for this connection).
      if (!hub.connected) await hub.ready(c.req.raw.signal)
    } catch (error) {
      subscription.close()
      throw error
    }
    const visible = visibleTo(c.get('guard'), servicesAlways(services))
    const encode = oneEngineBatches(events, name, visible, deps)
    return sseResponse(
      sseSettings(deps),
      deps.toProblem,
      relayTo(subscription, encode),
      sentPath(c),
    )
  })

  return app
}

/**
 * `GET /v1/events?engine=<glob>`: the events of every engine the pattern matches and the caller
 * may use, as one stream. Each engine's part resumes from its own position in the id. An engine
 * that cannot be reached now does not hold the others back: its part follows once it answers
 * (its hub reconnects by itself); only when none answers is it a 503.
 */
async function mergedEvents(
  c: Context<AppEnv>,
  scopes: EngineScopes,
  pattern: string,
  options: Omit<SubscribeOptions, 'lastEventId'> & {
    lastEventId: string | undefined
    /** Where the resume point came from, as a problem about it names it. */
    resumeParameter: string
  },
  deps: StreamDependencies,
  events: EventEncoder,
) {
  if (engineNamed(sentPath(c)) !== undefined) {
    throw badRequest('`engine` chooses the engines of /v1/events; this path names one already', [
      { name: 'query.engine', reason: 'not on an engine’s own path' },
    ])
  }
  const chosen = [...scopes.values()].filter(
    (scope) => globMatches(pattern, scope.name) && mayUse(c.get('principal'), scope.name),
  )
  if (chosen.length === 0) throw noSuchEngine(pattern)
  const { lastEventId, resumeParameter, ...rest } = options
  const resumed = lastEventId === undefined ? undefined : parseMergedId(lastEventId)
  if (lastEventId !== undefined && !resumed) {
    throw badRequest('A one-engine event id resumes that engine’s stream only', [
      { name: resumeParameter, reason: 'not an event id of a merged stream' },
    ])
  }
  if (c.req.method === 'HEAD') return eventStreamHead()
  const positions: MergedPositions = new Map()
  const parts = chosen.map(({ name, hub }) => {
    const point = resumed?.get(name) || undefined
    // Without a point: live from now, i.e. after the last event the hub holds.
    positions.set(name, point ?? hub.lastEventId ?? '')
    return { engine: name, subscription: hub.subscribe({ ...rest, lastEventId: point }) }
  })
  const source = mergedSource(parts)
  const waiting = chosen.filter(({ hub }) => !hub.connected)
  if (waiting.length > 0) {
    const tried = await Promise.allSettled(waiting.map(({ hub }) => hub.ready(c.req.raw.signal)))
    const failed = tried.flatMap((t) => (t.status === 'rejected' ? [t.reason as unknown] : []))
    if (failed.length === chosen.length) {
      source.close()
      throw failed[0]
    }
  }
  const visible = visibleTo(c.get('guard'), servicesOfScopes(scopes))
  const encode = mergedBatches(events, positions, visible, deps)
  return sseResponse(sseSettings(deps), deps.toProblem, relayTo(source, encode), sentPath(c))
}

/*
 * The stream's producer and its visibility are built by the functions below, not by closures of
 * the handler: a closure made in the handler keeps the handler's whole scope, the request's Hono
 * context among it, for as long as the stream is open (a heap snapshot with 1,000 streams held
 * 1,000 contexts, each with its request, guard and a dozen closures, through the encoder's
 * closure alone: bench/README.md, "Events fan-out and one subscriber's latency").
 */

/** The producer that relays `source` with `encode`. */
function relayTo<T>(
  source: ItemSource<T>,
  encode: (items: T[]) => { chunk: Uint8Array | undefined; end: boolean },
): (sink: SseSink) => Promise<void> {
  return (sink) => relay(source, sink, encode)
}

function oneEngineBatches(
  events: EventEncoder,
  engine: string,
  visible: Visibility,
  deps: StreamDependencies,
) {
  // The settings as they are at each batch: a reload changes the secret-label patterns.
  return (items: SubscriptionItem[]) => events.batch(items, engine, visible, deps.settings)
}

function mergedBatches(
  events: EventEncoder,
  positions: MergedPositions,
  visible: Visibility,
  deps: StreamDependencies,
) {
  return (items: MergedItem[]) => events.mergedBatch(items, positions, visible, deps.settings)
}

/** One engine's services, whichever engine is asked (a one-engine stream's events are its own). */
function servicesAlways(services: ServiceOwners | undefined) {
  return () => services
}

function servicesOfScopes(scopes: EngineScopes) {
  return (engine: string) => scopes.get(engine)?.services
}
