/**
 * @module How the events route writes a hub's events to its subscribers: the encoding (redacted,
 * each event naming its engine, cached for every subscriber) and the relay driven by the hubs'
 * wake-ups; for a stream merging several engines, the merged source and its resumable ids.
 */
import type { Guard } from '../domain/guard.ts'
import { isAdmin } from '../domain/principal.ts'
import { type RedactionSettings, redactLabels, secretKeyMemo } from '../domain/redaction.ts'
import type { EngineEvent } from '../events/event.ts'
import type { Subscription, SubscriptionItem } from '../events/hub.ts'
import type { SseSink } from '../http/sse.ts'
import type { ServiceOwners } from '../model/services.ts'
import { canSee } from '../policy/access.ts'
import { concatBytes } from '../streams/demux.ts'
import { encodeSse } from '../streams/sse.ts'
import type { EngineEventData } from './events.ts'

/** Whether the caller sees an event of the named engine. */
export type Visibility = (event: EngineEvent, engine: string) => boolean

/**
 * Who sees an event: an admin every one; anyone else only events of containers it may see
 * (its own, or those its policy's label selectors match), judged on the container's labels,
 * which the engine puts in the actor's attributes; of services it may see, judged on the labels
 * the gateway knows them by on their engine (API 1.41's service events carry none:
 * `model/services.ts`); and of nodes with the `nodes:read` scope. In audit mode everything passes.
 */
export function visibleTo(
  guard: Guard,
  servicesOf: (engine: string) => ServiceOwners | undefined,
): Visibility {
  const { principal } = guard
  if (isAdmin(principal) || guard.auditMode) return () => true
  const nodes = principal.scopes.has('nodes:read')
  return (event, engine) => {
    if (event.type === 'container') return canSee(principal, event.actor.attributes)
    if (event.type === 'service') {
      const labels = servicesOf(engine)?.labelsOf(event)
      return labels !== undefined && canSee(principal, labels)
    }
    return event.type === 'node' && nodes
  }
}

/** What a relay reads: one hub's subscription, or several merged. */
export type ItemSource<T> = Pick<Subscription, 'onReady' | 'close'> & {
  takeReady(): T[] | undefined
}

/** One item of a merged stream: which engine's hub it came from. */
export interface MergedItem {
  engine: string
  item: SubscriptionItem
}

/** Per engine, the id (`timeNano`) of the last event the stream passed; '' when none yet. */
export type MergedPositions = Map<string, string>

/**
 * A merged stream's event id: `<engine>:<timeNano>` for every engine of the stream, joined by
 * commas (`default:1795…201,b:1795…999`); an engine before its first event has an empty time.
 */
export function formatMergedId(positions: MergedPositions): string {
  let id = ''
  for (const [engine, nano] of positions) id += `${id ? ',' : ''}${engine}:${nano}`
  return id
}

/** A merged id's positions; undefined when it is not one (a one-engine id, or malformed). */
export function parseMergedId(id: string): MergedPositions | undefined {
  if (!MERGED_ID.test(id)) return undefined
  return new Map(
    id.split(',').map((part) => {
      const at = part.indexOf(':')
      return [part.slice(0, at), part.slice(at + 1)] as const
    }),
  )
}

/** The shape of a merged id (at most 64 engines). */
export const MERGED_ID =
  /^[a-z0-9][a-z0-9_-]{0,62}:\d{0,20}(?:,[a-z0-9][a-z0-9_-]{0,62}:\d{0,20}){0,63}$/

/**
 * Several engines' subscriptions read as one: what each has ready, tagged with its engine. It is
 * over when any of them is (the gateway stops, or one overflowed: the client resumes all).
 */
export function mergedSource(
  parts: readonly { engine: string; subscription: Subscription }[],
): ItemSource<MergedItem> {
  return {
    takeReady() {
      const items: MergedItem[] = []
      for (const { engine, subscription } of parts) {
        const ready = subscription.takeReady()
        if (ready === undefined) return items.length > 0 ? items : undefined
        for (const item of ready) items.push({ engine, item })
      }
      return items
    },
    onReady(listener) {
      for (const { subscription } of parts) subscription.onReady(listener)
    },
    close() {
      for (const { subscription } of parts) subscription.close()
    },
  }
}

function concatParts(parts: Uint8Array[]): Uint8Array | undefined {
  return parts.length <= 1 ? parts[0] : concatBytes(parts)
}

/**
 * The event as a client may read it: its engine named, secret-looking attribute values as null.
 * Written out field by field, in the order the spreads `{ ...event, engine, actor: { ...actor,
 * attributes } }` gave: those made V8 define `engine` and replace `actor` on its slow path,
 * about a third of the event's encoding in a profile of bench phase 4a (bench/README.md, "One
 * subscriber's latency, ninth look"). Its type is the document's: no field can be left out.
 */
function redacted(
  event: EngineEvent,
  engine: string,
  patterns: readonly string[],
  isSecret: (key: string) => boolean,
): EngineEventData {
  const { actor } = event
  return {
    type: event.type,
    action: event.action,
    actor: {
      id: actor.id,
      name: actor.name,
      attributes: redactLabels(actor.attributes, patterns, isSecret),
    },
    time: event.time,
    timeNano: event.timeNano,
    engine,
  }
}

const encoder = new TextEncoder()

/**
 * Encodes the hub's events as event-stream bytes for one app's subscribers. Its caches belong to
 * the app: another app (other settings, another hub) keeps its own.
 */
export class EventEncoder {
  /**
   * Every subscriber receives the hub's same event object, so each event is redacted and encoded
   * once, by the first subscriber that sends it, for all (keyed by the patterns it was redacted
   * with). A WeakMap: an event leaves the cache when it leaves the hub's ring.
   */
  readonly #encoded = new WeakMap<
    EngineEvent,
    { patterns: readonly string[]; data: string; bytes: Uint8Array }
  >()
  /** Subscribers that fell equally behind send the same events: the last join is reused. */
  #lastJoin: { parts: Uint8Array[]; bytes: Uint8Array } | undefined
  /** Which attribute keys are secret, for the patterns in force (a reload brings new ones). */
  #secretKeys: { patterns: readonly string[]; isSecret: (key: string) => boolean } | undefined

  /**
   * The items of one batch as one chunk of event-stream bytes (undefined when none is visible),
   * and whether the stream ends after it (`resync` `overflow`).
   */
  batch(
    items: SubscriptionItem[],
    engine: string,
    visible: Visibility,
    settings: RedactionSettings,
  ): { chunk: Uint8Array | undefined; end: boolean } {
    const parts: Uint8Array[] = []
    let end = false
    for (const item of items) {
      if (item.kind === 'event') {
        if (visible(item.event, engine)) parts.push(this.#event(item.event, engine, settings).bytes)
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

  /**
   * The event's `data` (redacted, its engine named) and its bytes as a one-engine stream sends
   * it (`id:` its timeNano), cached for every subscriber of its hub (a hub's events are one
   * engine's).
   */
  #event(event: EngineEvent, engine: string, settings: RedactionSettings) {
    const cached = this.#encoded.get(event)
    if (cached?.patterns === settings.secretLabelPatterns) return cached
    const patterns = settings.secretLabelPatterns
    if (this.#secretKeys?.patterns !== patterns) {
      this.#secretKeys = { patterns, isSecret: secretKeyMemo(patterns) }
    }
    const data = JSON.stringify(redacted(event, engine, patterns, this.#secretKeys.isSecret))
    const bytes = encoder.encode(encodeSse({ event: event.type, id: event.timeNano, data }))
    const encoded = { patterns: settings.secretLabelPatterns, data, bytes }
    this.#encoded.set(event, encoded)
    return encoded
  }

  /**
   * A merged stream's items (several engines') as one chunk: each event's `id:` is the stream's
   * position in every engine after it (`positions`, updated here), so that one Last-Event-ID
   * resumes each engine's part where it stopped.
   */
  mergedBatch(
    items: MergedItem[],
    positions: MergedPositions,
    visible: Visibility,
    settings: RedactionSettings,
  ): { chunk: Uint8Array | undefined; end: boolean } {
    const parts: Uint8Array[] = []
    let end = false
    for (const { engine, item } of items) {
      if (item.kind === 'event') {
        positions.set(engine, item.event.timeNano)
        if (!visible(item.event, engine)) continue
        const { data } = this.#event(item.event, engine, settings)
        const id = formatMergedId(positions)
        parts.push(encoder.encode(encodeSse({ event: item.event.type, id, data })))
        continue
      }
      const data = JSON.stringify({ reason: item.reason, engine })
      parts.push(encoder.encode(encodeSse({ event: 'resync', data })))
      if (item.reason === 'overflow') {
        end = true
        break
      }
    }
    return { chunk: concatParts(parts), end }
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
export function relay<T>(
  subscription: ItemSource<T>,
  sink: SseSink,
  encode: (items: T[]) => { chunk: Uint8Array | undefined; end: boolean },
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
