/**
 * @module The hub's replay ring and where a resume point starts in it.
 *
 * The ring holds the latest events by sequence number (oldest evicted first). Ids are positions:
 * a resume after an id the ring holds continues after that very event, even if the engine
 * delivered a later one with an earlier `timeNano` (concurrent events can be published out of
 * order). Several events sharing one `timeNano` share one id; a resume at it continues after the
 * first of them (a repeat is possible there, a loss is not).
 */
import { fromEngineTime, type ParsedEvent } from './event.ts'

/** An event in the ring, with its sequence number. */
export interface Entry extends ParsedEvent {
  seq: number
}

/** Where a client resumes: after an event id (`timeNano`), or from an engine time (inclusive). */
export type ResumePoint = { after: bigint; id: string } | { from: bigint }

/**
 * Where a resumed subscriber starts reading: `gap` when the coverage does not reach its point;
 * otherwise the ring sequence number to replay from (`cursor`, none when only pushed events are
 * left) and the time through which events are skipped (`skipThrough`).
 */
export type ResumeStart = 'gap' | { cursor: number | undefined; skipThrough: bigint | undefined }

/** The replay ring: events by sequence number, oldest evicted first. */
export class Ring {
  readonly #slots: (Entry | undefined)[]
  /** `timeNano` → the sequence number of the first held event with it. */
  readonly #byTime = new Map<string, number>()
  #firstSeq = 0
  #nextSeq = 0

  constructor(capacity: number) {
    this.#slots = new Array<Entry | undefined>(capacity)
  }

  /** Most events held: the next one evicts the oldest. */
  get capacity(): number {
    return this.#slots.length
  }

  get size(): number {
    return this.#nextSeq - this.#firstSeq
  }

  get firstSeq(): number {
    return this.#firstSeq
  }

  get nextSeq(): number {
    return this.#nextSeq
  }

  get full(): boolean {
    return this.size === this.#slots.length
  }

  at(seq: number): Entry | undefined {
    if (seq < this.#firstSeq || seq >= this.#nextSeq) return undefined
    return this.#slots[seq % this.#slots.length]
  }

  seqOf(timeNano: string): number | undefined {
    return this.#byTime.get(timeNano)
  }

  push(parsed: ParsedEvent): { entry: Entry; evicted: Entry | undefined } {
    const capacity = this.#slots.length
    let evicted: Entry | undefined
    if (this.size === capacity) {
      evicted = this.at(this.#firstSeq)
      this.#firstSeq++
      if (evicted && this.#byTime.get(evicted.event.timeNano) === evicted.seq) {
        const next = this.at(evicted.seq + 1)
        if (next && next.event.timeNano === evicted.event.timeNano) {
          this.#byTime.set(next.event.timeNano, next.seq)
        } else {
          this.#byTime.delete(evicted.event.timeNano)
        }
      }
    }
    // Written out, not `{ ...parsed, seq }`: a spread clones through V8's slow path in the cold code
    // an event runs (bench/README.md, "One subscriber's latency, fifth look").
    const entry: Entry = {
      event: parsed.event,
      nano: parsed.nano,
      key: parsed.key,
      seq: this.#nextSeq,
    }
    this.#slots[entry.seq % capacity] = entry
    this.#nextSeq++
    if (!this.#byTime.has(entry.event.timeNano)) this.#byTime.set(entry.event.timeNano, entry.seq)
    return { entry, evicted }
  }

  /**
   * Where a subscriber resuming at `point` starts, given that the hub holds every event later
   * than `coverage` (exclusive; undefined: no coverage).
   */
  resumeStart(point: ResumePoint, coverage: bigint | undefined): ResumeStart {
    const covered =
      coverage !== undefined && ('after' in point ? point.after >= coverage : point.from > coverage)
    if (!covered) return 'gap'
    const seq = 'after' in point ? this.seqOf(point.id) : undefined
    if (seq !== undefined && seq + 1 < this.#nextSeq) {
      return { cursor: seq + 1, skipThrough: undefined }
    }
    if (seq !== undefined) {
      // Nothing to replay: events are pushed from now on (the one at the point excluded).
      return { cursor: undefined, skipThrough: 'after' in point ? point.after : undefined }
    }
    // Not held (older, or not yet replayed by the engine): skip to the first later event.
    return {
      cursor: this.#firstSeq,
      skipThrough: 'after' in point ? point.after : point.from - 1n,
    }
  }
}

/** The resume point a client asked for (`lastEventId` wins over `since`); undefined for none. */
export function resumePoint(options: {
  lastEventId?: string | undefined
  since?: string | undefined
}): ResumePoint | undefined {
  if (options.lastEventId !== undefined && /^\d{1,20}$/.test(options.lastEventId)) {
    const after = BigInt(options.lastEventId)
    return { after, id: after.toString() }
  }
  if (options.since !== undefined) {
    const from = fromEngineTime(options.since)
    if (from !== undefined) return { from }
  }
  return undefined
}

/** Dedupe keys remembered for reconnect replays, which start shortly before the last event. */
const RECENT_KEYS = 4_096

/** The dedupe keys of the latest events, so that a reconnect's replay is not delivered twice. */
export class RecentKeys {
  /** Oldest first. */
  readonly #keys = new Set<string>()

  has(key: string): boolean {
    return this.#keys.has(key)
  }

  add(key: string): void {
    this.#keys.add(key)
    if (this.#keys.size > RECENT_KEYS) {
      const oldest = this.#keys.values().next()
      if (!oldest.done) this.#keys.delete(oldest.value)
    }
  }
}

export function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Cannot create the event hub: ${name} must be a positive integer`)
  }
  return value
}
