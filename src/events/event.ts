/**
 * @module The curated engine event: how one line of the engine's `/events` stream becomes one,
 * and the filters a subscriber can apply to them (docs/engine-notes.md#event-stream).
 *
 * Curation: `Action` keeps only the part before its first `:` (`exec_start: sh -c …` →
 * `exec_start`), so exec command lines never leave the gateway; `timeNano` is an exact decimal
 * string taken from the raw line (`JSON.parse` rounds it: docs/engine-notes.md#large-integers);
 * `time` is the same instant as an ISO 8601 string with nanoseconds. The legacy
 * `status`/`id`/`from` fields are dropped.
 */
import type { z } from 'zod'
import { extractIntegerField, type NdjsonRecord } from '../streams/ndjson.ts'
import type { RawEngineEventSchema } from './event.schemas.ts'

/** The event types of API 1.41 (`v20.10.24:api/swagger.yaml` `/events`). */
export const EVENT_TYPES = [
  'container',
  'image',
  'volume',
  'network',
  'daemon',
  'plugin',
  'node',
  'service',
  'secret',
  'config',
  'builder',
] as const

export type EventType = (typeof EVENT_TYPES)[number]

export interface EngineEvent {
  type: EventType
  /** The engine's `Action` up to its first colon. */
  action: string
  actor: {
    id: string
    /** `Actor.Attributes.name`, or null when the actor has none. */
    name: string | null
    /** All of `Actor.Attributes` (for containers: their labels, `name`, `image`, …). */
    attributes: Record<string, string>
  }
  /** ISO 8601 with nanoseconds, e.g. `2026-11-29T03:40:53.902667431Z`. */
  time: string
  /** Nanoseconds since the epoch, exact, as decimal digits. Also the stream's event id. */
  timeNano: string
}

/** An event as the hub keeps it. */
export interface ParsedEvent {
  event: EngineEvent
  /** `timeNano` as a number that compares exactly. */
  nano: bigint
  /** What tells two events apart when they share a `timeNano`: time, type, full action, actor. */
  key: string
}

export type RawEngineEvent = z.infer<typeof RawEngineEventSchema>

const TYPES: ReadonlySet<string> = new Set(EVENT_TYPES)

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Whether a parsed line is what {@link RawEngineEventSchema} accepts (test/events/event.test.ts
 * proves them equal on arbitrary values). By hand because it runs before every event reaches a
 * subscriber: the schema's parse took 40 µs of an event's first hundred deliveries, the whole of
 * `parseEngineEvent` now 9 µs (bench phase `latency`, where the gateway sees only 50–100 events).
 */
export function isRawEngineEvent(value: unknown): value is RawEngineEvent {
  if (!isObject(value)) return false
  const { Type, Action, Actor, timeNano } = value
  if (typeof Type !== 'string' || !TYPES.has(Type)) return false
  if (typeof Action !== 'string' || Action.length < 1 || Action.length > 65_536) return false
  if (typeof timeNano !== 'number' || !Number.isFinite(timeNano)) return false
  if (!isObject(Actor)) return false
  const { ID, Attributes } = Actor
  if (typeof ID !== 'string' || ID.length > 1024) return false
  return Attributes === undefined || Attributes === null || isObject(Attributes)
}

const TIME_NANO = /^\d{1,20}$/
const TRAILING_TIME_NANO = /,"timeNano":(\d{1,20})\}$/

/**
 * `timeNano`'s digits from the raw line of an event: the engine writes it last
 * (`…,"timeNano":1795923285422325136}`), which a pattern finds at once; anything else takes
 * {@link extractIntegerField}'s scan of the whole line (50 µs a line on a fresh gateway:
 * bench phase `latency`). At the very end of a line that is one JSON object, the field is a key
 * of the outermost object (its closing brace follows); where `"timeNano"` also shows earlier
 * (a duplicate key, a string), the scan decides, as it always did.
 */
function timeNanoOf(raw: string): string | undefined {
  const trailing = TRAILING_TIME_NANO.exec(raw)
  if (trailing !== null && raw.indexOf('"timeNano"') === trailing.index + 1) return trailing[1]
  return extractIntegerField(raw, 'timeNano')
}

/**
 * Reads one `/events` line. Returns undefined for a line that is not an event of a known type
 * with an integer `timeNano`; the caller counts those.
 */
export function parseEngineEvent(record: NdjsonRecord): ParsedEvent | undefined {
  const raw = record.value
  if (!isRawEngineEvent(raw)) return undefined
  // The raw text of a line that parsed, as an object: what timeNanoOf needs
  const timeNano = timeNanoOf(record.raw)
  if (timeNano === undefined || !TIME_NANO.test(timeNano)) return undefined
  const action = curateAction(raw.Action)
  if (action === '') return undefined
  const attributes: Record<string, string> = {}
  for (const [key, value] of Object.entries(raw.Actor.Attributes ?? {})) {
    if (typeof value === 'string') attributes[key] = value
  }
  const nano = BigInt(timeNano)
  return {
    event: {
      type: raw.Type,
      action,
      actor: { id: raw.Actor.ID, name: attributes.name ?? null, attributes },
      time: isoTime(nano),
      timeNano: nano.toString(),
    },
    nano,
    key: `${nano}\0${raw.Type}\0${raw.Action}\0${raw.Actor.ID}`,
  }
}

/** `exec_create: sh -c echo hi` → `exec_create`; `health_status: healthy` → `health_status`. */
function curateAction(action: string): string {
  const colon = action.indexOf(':')
  return (colon === -1 ? action : action.slice(0, colon)).trim()
}

const NS_PER_SECOND = 1_000_000_000n

/** Nanoseconds since the epoch → `2026-11-29T03:40:53.902667431Z`, without float maths. */
export function isoTime(nano: bigint): string {
  const seconds = nano / NS_PER_SECOND
  const fraction = String(nano % NS_PER_SECOND).padStart(9, '0')
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction}Z`
}

/** Nanoseconds since the epoch → the engine's `since`/`until` form, `seconds.nanoseconds`. */
export function toEngineSince(nano: bigint): string {
  return `${nano / NS_PER_SECOND}.${String(nano % NS_PER_SECOND).padStart(9, '0')}`
}

/** The engine's `seconds[.fraction]` form → nanoseconds; undefined when it is not that form. */
export function fromEngineTime(time: string): bigint | undefined {
  const match = /^(\d{1,12})(?:\.(\d{1,9}))?$/.exec(time)
  if (!match) return undefined
  return BigInt(match[1]!) * NS_PER_SECOND + BigInt((match[2] ?? '').padEnd(9, '0'))
}

/**
 * What a subscriber wants. Values of one key are ORed, keys are ANDed, and several `label`
 * selectors must all match, as the engine does (§2.3). Empty or missing keys match everything.
 */
export interface EventFilter {
  /** Event types. */
  type?: readonly string[]
  /** Curated actions (`exec_start`, `health_status`); a value is compared up to its first colon. */
  action?: readonly string[]
  /** Container id, id prefix or name; only container events match. */
  container?: readonly string[]
  /** Image reference or id, compared as the engine does (exactly, or without tag and digest). */
  image?: readonly string[]
  /** `key` (present) or `key=value`, against the actor's attributes. */
  label?: readonly string[]
}

export function matchesFilter(event: EngineEvent, filter: EventFilter): boolean {
  if (filter.type?.length && !filter.type.includes(event.type)) return false
  if (filter.action?.length && !filter.action.some((a) => curateAction(a) === event.action)) {
    return false
  }
  if (filter.container?.length && !matchesContainer(event, filter.container)) return false
  if (filter.image?.length && !matchesImage(event, filter.image)) return false
  if (filter.label?.length && !filter.label.every((s) => matchesLabel(event, s))) return false
  return true
}

function matchesContainer(event: EngineEvent, refs: readonly string[]): boolean {
  if (event.type !== 'container') return false
  const { id, name } = event.actor
  return refs.some((ref) => ref === name || id.startsWith(ref))
}

/** `daemon/events/filter.go#matchImage`: the actor id or image name, as is or without its tag. */
function matchesImage(event: EngineEvent, refs: readonly string[]): boolean {
  const name = event.type === 'image' ? event.actor.name : event.actor.attributes.image
  const candidates = [event.actor.id, stripTag(event.actor.id)]
  if (name) candidates.push(name, stripTag(name))
  return refs.some((ref) => candidates.includes(ref))
}

/** `docker.io/library/busybox:1.36@sha256:…` → `busybox`, like the engine's `FamiliarName`. */
function stripTag(image: string): string {
  if (image.startsWith('sha256:')) return image
  let name = image
  const at = name.indexOf('@')
  if (at !== -1) name = name.slice(0, at)
  const colon = name.lastIndexOf(':')
  if (colon > name.lastIndexOf('/')) name = name.slice(0, colon)
  if (name.startsWith('docker.io/')) name = name.slice('docker.io/'.length)
  if (name.startsWith('library/') && name.indexOf('/', 'library/'.length) === -1) {
    name = name.slice('library/'.length)
  }
  return name
}

function matchesLabel(event: EngineEvent, selector: string): boolean {
  const attributes = event.actor.attributes
  const equals = selector.indexOf('=')
  if (equals === -1) return Object.hasOwn(attributes, selector)
  const key = selector.slice(0, equals)
  return Object.hasOwn(attributes, key) && attributes[key] === selector.slice(equals + 1)
}
