/**
 * @module The shared replay ring: a port through which several gateway instances, each with its
 * own upstream `/events` connection, keep one history of the engine's events, so that a client
 * resumes on any instance (`Last-Event-ID`) with no gap and no duplicate as far back as it holds.
 *
 * **Appends.** Every instance appends each event it receives, in the order it received it, with
 * the key of the event received just before it on the same unbroken connection (`prev`; none
 * after a seed or a gap). Every instance sees the engine's one publication order, so:
 * - an event already held (another instance appended it first) is skipped: no duplicates;
 * - an event is **continuous** when its `prev` is held: nothing lies between them, and the chain
 *   of such links proves the history whole;
 * - an event that is not continuous starts a new stretch (`gap`): what came before it may be
 *   missing. If it is also older than the newest held event, it is history nobody followed
 *   (an instance's seed replaying the engine's ring): it is dropped, as its place is unknown.
 *
 * Entries are ordered by an id `timeNano-n`: the event's own `timeNano`, or, for an event
 * delivered after a later one (the engine can publish concurrent events out of order), the
 * newest id's time with the next `n`. So ids only grow and an entry's id is never earlier than
 * its event.
 *
 * **Instances disagree on order.** The engine publishes concurrent events to each of its
 * subscribers in its own order (`daemon/events` publishes outside its lock), so two instances can
 * receive two events the other way round. An instance that receives a held event right after
 * `prev` although it is placed before `prev` records it as **late** after `prev`. A client that
 * read `prev` last on that instance has not seen it: the resume replays it too.
 *
 * **Resume.** The late entries after the point (and theirs), then the held entries after it
 * (see {@link replayFrom}); `gap` when the point is older than the first one held, or a `gap`
 * entry follows it. No gap; a repeat only of an event the instances received in different
 * orders, and only when the client read from the one whose order the ring does not follow.
 *
 * `memorySharedRing` keeps it in one process (two hubs in one process, tests); the Redis
 * adapter (`shared-redis.ts`) keeps it in a capped stream shared by every instance.
 */
import type { ParsedEvent } from './event.ts'
import type { ResumePoint } from './ring.ts'

export interface SharedRing {
  /**
   * Appends `parsed`, received right after `prev` (its key) on an unbroken connection, or with
   * `prev` undefined after a seed or a gap. Appends run in call order; failures are reported
   * through the adapter's own logger, never thrown (the next append simply is not continuous).
   */
  append(parsed: ParsedEvent, prev: string | undefined): void
  /** Resolves once every append called so far has been done (or has failed). */
  flushed(): Promise<void>
  /** The held events after `point` in order, or `gap` when they cannot be proven whole. */
  replay(point: ResumePoint): Promise<ParsedEvent[] | 'gap'>
}

/** An entry of the shared ring. */
export interface SharedEntry {
  parsed: ParsedEvent
  /** Events before this one may be missing. */
  gap: boolean
}

/**
 * The events after `point`, given the first entry held (`first`), in order every entry whose id
 * is not earlier than the point's time (`entries`, which hold every event that is), and what
 * was late after the point's own entry (`late`, see {@link pointEntry}). A held `after` point
 * continues after the first entry with that `timeNano` (as the local ring does: a repeat is
 * possible among events sharing one nanosecond, a loss is not); a point not held skips to the
 * first later event.
 */
export function replayFrom(
  point: ResumePoint,
  first: SharedEntry | undefined,
  entries: readonly SharedEntry[],
  late: readonly SharedEntry[] = [],
): ParsedEvent[] | 'gap' {
  if (first === undefined) return 'gap'
  const coverage = first.parsed.nano
  const covered = 'after' in point ? point.after >= coverage : point.from > coverage
  if (!covered) return 'gap'
  let start: number
  if ('after' in point) {
    const at = entries.findIndex((e) => e.parsed.event.timeNano === point.id)
    start = at !== -1 ? at + 1 : entries.findIndex((e) => e.parsed.nano > point.after)
  } else {
    start = entries.findIndex((e) => e.parsed.nano >= point.from)
  }
  const after = start === -1 ? [] : entries.slice(start)
  if (after.some((e) => e.gap)) return 'gap'
  const keys = new Set(after.map((e) => e.parsed.key))
  const before = late.filter((e) => !keys.has(e.parsed.key)).map((e) => e.parsed)
  return [...before, ...after.map((e) => e.parsed)]
}

/** The entry a held `after` point continues after (the first with its `timeNano`). */
export function pointEntry<T extends SharedEntry>(
  point: ResumePoint,
  entries: readonly T[],
): T | undefined {
  return 'after' in point ? entries.find((e) => e.parsed.event.timeNano === point.id) : undefined
}

/** Most late entries a resume follows (late after late after …). */
export const LATE_LIMIT = 64

/** Where an append goes: `skip` (held already, or history with no place), or its entry. */
export function placeAppend(
  last: { ms: bigint; n: number } | undefined,
  parsed: ParsedEvent,
  continuous: boolean,
): { ms: bigint; n: number } | 'skip' {
  if (last === undefined || parsed.nano > last.ms) return { ms: parsed.nano, n: 0 }
  return continuous ? { ms: last.ms, n: last.n + 1 } : 'skip'
}

type Placed = { ms: bigint; n: number }

const placedBefore = (a: Placed, b: Placed) => a.ms < b.ms || (a.ms === b.ms && a.n < b.n)

/** A shared ring in this process's memory, capped at `capacity` entries. */
export function memorySharedRing(capacity: number): SharedRing {
  const entries: (SharedEntry & Placed)[] = []
  const held = new Map<string, SharedEntry & Placed>()
  /** Key → the entries received right after it by some instance, though placed before it. */
  const lateAfter = new Map<string, (SharedEntry & Placed)[]>()
  return {
    append(parsed, prev) {
      const known = held.get(parsed.key)
      const before = prev === undefined ? undefined : held.get(prev)
      if (known) {
        if (before && prev !== undefined && placedBefore(known, before)) {
          const late = lateAfter.get(prev) ?? []
          if (!late.includes(known)) lateAfter.set(prev, [...late, known])
        }
        return
      }
      const place = placeAppend(entries.at(-1), parsed, before !== undefined)
      if (place === 'skip') return
      if (entries.length >= capacity) {
        const oldest = entries.shift()
        if (oldest) {
          held.delete(oldest.parsed.key)
          lateAfter.delete(oldest.parsed.key)
        }
      }
      const entry = { parsed, gap: before === undefined, ...place }
      entries.push(entry)
      held.set(parsed.key, entry)
    },
    flushed: () => Promise.resolve(),
    async replay(point) {
      const time = 'after' in point ? point.after : point.from
      const from = entries.filter((e) => e.ms >= time)
      const at = pointEntry(point, from)
      const late: SharedEntry[] = []
      const queue = at ? [at.parsed.key] : []
      for (
        let key = queue.shift();
        key !== undefined && late.length < LATE_LIMIT;
        key = queue.shift()
      ) {
        for (const entry of lateAfter.get(key) ?? []) {
          if (late.includes(entry)) continue
          late.push(entry)
          queue.push(entry.parsed.key)
        }
      }
      return replayFrom(point, entries[0], from, late)
    },
  }
}
