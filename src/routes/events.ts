/**
 * @module `GET /v1/events`: the engine's events as server-sent events, curated, filtered and
 * resumable, all served from the gateway's one upstream (`EventHub`).
 */
import { createRoute, z } from '@hono/zod-openapi'
import { TICKET_MAX_LENGTH } from '../auth/tickets.ts'
import type { Guard } from '../domain/guard.ts'
import { isAdmin } from '../domain/principal.ts'
import { type RedactionSettings, redactLabels, refuseSecretSelectors } from '../domain/redaction.ts'
import { type EngineEvent, EVENT_TYPES } from '../events/event.ts'
import type { EventHub, Subscription, SubscriptionItem } from '../events/hub.ts'
import { RevokedDataSchema } from '../http/open-streams.ts'
import {
  eventStreamHead,
  type SseSink,
  type StreamDependencies,
  sseResponse,
  sseSettings,
} from '../http/sse.ts'
import type { ServiceOwners } from '../model/services.ts'
import { canSee } from '../policy/access.ts'
import { concatBytes } from '../streams/demux.ts'
import { encodeSse } from '../streams/sse.ts'
import {
  CONTAINER_REF,
  ENGINE_PROBLEMS,
  EngineTimeParam,
  ProblemSchema,
  problems,
  router,
  scoped,
  strictQuery,
  TIME_HELP,
} from './common.ts'
import { ImageRef, LabelSelector, MAX_LABEL_SELECTORS } from './containers.schemas.ts'

const EventTypeSchema = z
  .enum(EVENT_TYPES)
  .openapi('EventType', { description: 'A Docker Engine event type (API 1.41)' })
const ActionSchema = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'an event action, e.g. `start`')
const ContainerRefSchema = z
  .string()
  .regex(CONTAINER_REF, 'a container id, id prefix or name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)')

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
  cursor: z
    .string()
    .regex(/^\d{1,20}$/, 'an event id (a timeNano: digits)')
    .optional()
    .openapi({
      description:
        'Resume after this event (its id), as Last-Event-ID does; the header wins. For a page that opens a new EventSource (with a new ticket) where the last one stopped',
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
    timeNano: z.string().openapi({
      description:
        'The same instant in nanoseconds since the epoch, exact (too large for a JSON number); also the event id',
      example: '1795923285422325136',
    }),
  })
  .openapi('EngineEvent')

const ResyncData = z
  .object({
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
      'last-event-id': z
        .string()
        .regex(/^\d{0,20}$/, 'an event id (a timeNano: digits)')
        .optional()
        .openapi({ description: 'Resume after this event (its id, a timeNano)' }),
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

/**
 * Who sees an event: an admin every one; anyone else only events of containers it may see
 * (its own, or those its policy's label selectors match), judged on the container's labels,
 * which the engine puts in the actor's attributes; of services it may see, judged on the labels
 * the gateway knows them by (API 1.41's service events carry none: `model/services.ts`); and of
 * nodes with the `nodes:read` scope. In audit mode everything passes.
 */
function visibleTo(guard: Guard, owners: ServiceOwners | undefined) {
  const { principal } = guard
  if (isAdmin(principal) || guard.auditMode) return () => true
  const nodes = principal.scopes.has('nodes:read')
  return (event: EngineEvent) => {
    if (event.type === 'container') return canSee(principal, event.actor.attributes)
    if (event.type === 'service') {
      const labels = owners?.labelsOf(event)
      return labels !== undefined && canSee(principal, labels)
    }
    return event.type === 'node' && nodes
  }
}

/** The event as a client may read it: secret-looking attribute values as null. */
function redacted(event: EngineEvent, settings: RedactionSettings) {
  const attributes = redactLabels(event.actor.attributes, settings.secretLabelPatterns)
  return { ...event, actor: { ...event.actor, attributes } }
}

const encoder = new TextEncoder()

/**
 * Encodes the hub's events as event-stream bytes for one app's subscribers. Its caches belong to
 * the app: another app (other settings, another hub) keeps its own.
 */
class EventEncoder {
  /**
   * Every subscriber receives the hub's same event object, so each event is redacted and encoded
   * once, by the first subscriber that sends it, for all (keyed by the patterns it was redacted
   * with). A WeakMap: an event leaves the cache when it leaves the hub's ring.
   */
  readonly #encoded = new WeakMap<EngineEvent, { patterns: readonly string[]; bytes: Uint8Array }>()
  /** Subscribers that fell equally behind send the same events: the last join is reused. */
  #lastJoin: { parts: Uint8Array[]; bytes: Uint8Array } | undefined

  /**
   * The items of one batch as one chunk of event-stream bytes (undefined when none is visible),
   * and whether the stream ends after it (`resync` `overflow`).
   */
  batch(
    items: SubscriptionItem[],
    visible: (event: EngineEvent) => boolean,
    settings: RedactionSettings,
  ): { chunk: Uint8Array | undefined; end: boolean } {
    const parts: Uint8Array[] = []
    let end = false
    for (const item of items) {
      if (item.kind === 'event') {
        if (visible(item.event)) parts.push(this.#event(item.event, settings))
        continue
      }
      const data = JSON.stringify({ reason: item.reason })
      parts.push(encoder.encode(encodeSse({ event: 'resync', data })))
      if (item.reason === 'overflow') {
        end = true
        break
      }
    }
    return { chunk: this.#join(parts), end }
  }

  #event(event: EngineEvent, settings: RedactionSettings): Uint8Array {
    const cached = this.#encoded.get(event)
    if (cached?.patterns === settings.secretLabelPatterns) return cached.bytes
    const data = JSON.stringify(redacted(event, settings))
    const bytes = encoder.encode(encodeSse({ event: event.type, id: event.timeNano, data }))
    this.#encoded.set(event, { patterns: settings.secretLabelPatterns, bytes })
    return bytes
  }

  /** The parts as one chunk; the last join when the parts are the same ones, not a copy. */
  #join(parts: Uint8Array[]): Uint8Array | undefined {
    if (parts.length <= 1) return parts[0]
    const last = this.#lastJoin
    if (last?.parts.length === parts.length && last.parts.every((part, i) => part === parts[i])) {
      return last.bytes
    }
    const bytes = concatBytes(parts)
    this.#lastJoin = { parts, bytes }
    return bytes
  }
}

/**
 * Sends the subscription's items until it ends, the client leaves or the gateway stops: what is
 * ready at once goes out in one write. Driven by the hub's wake-ups (`onReady`), not by awaiting
 * them: with 10,000 subscribers a fan-out then costs a write per subscriber and no promise.
 */
function relay(
  subscription: Subscription,
  sink: SseSink,
  encode: (items: SubscriptionItem[]) => { chunk: Uint8Array | undefined; end: boolean },
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let over = false
    let pumping = false
    let wokenMeanwhile = false
    let waitingForRoom = false
    const finish = (error?: unknown) => {
      if (over) return
      over = true
      sink.signal.removeEventListener('abort', stop)
      subscription.close()
      if (error === undefined) resolve()
      else reject(error)
    }
    const stop = () => finish()
    const waitForRoom = () => {
      waitingForRoom = true
      sink.whenWritable().then((open) => {
        waitingForRoom = false
        if (open) pump()
        else finish()
      }, finish)
    }
    /** Writes what is ready; a wake-up while it runs (a write can cause one) runs it once more. */
    const pump = () => {
      if (over || waitingForRoom) return
      if (pumping) {
        wokenMeanwhile = true
        return
      }
      pumping = true
      try {
        do {
          wokenMeanwhile = false
          for (;;) {
            const items = subscription.takeReady()
            if (items === undefined) return finish()
            if (items.length === 0) break
            const { chunk, end } = encode(items)
            const room = chunk === undefined || sink.writeEncoded(chunk)
            if (end) return finish()
            if (!room) return waitForRoom()
          }
        } while (wokenMeanwhile && !over)
      } catch (error) {
        finish(error)
      } finally {
        pumping = false
      }
    }
    if (sink.signal.aborted) return finish()
    sink.signal.addEventListener('abort', stop, { once: true })
    subscription.onReady(pump)
    pump()
  })
}

export function eventRoutes(hub: EventHub, deps: StreamDependencies, owners?: ServiceOwners) {
  const app = router()
  const events = new EventEncoder()

  app.openapi(eventsRoute, async (c) => {
    const { since, cursor, ticket: _ticket, ...filter } = c.req.valid('query')
    refuseSecretSelectors(filter.label ?? [], deps.settings.secretLabelPatterns, 'query.label')
    const lastEventId = c.req.valid('header')['last-event-id'] || cursor || undefined
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
    return sseResponse(
      sseSettings(deps),
      deps.toProblem,
      (sink) => {
        const visible = visibleTo(c.var.guard, owners)
        return relay(subscription, sink, (items) => events.batch(items, visible, deps.settings))
      },
      c.req.path,
    )
  })

  return app
}
