/**
 * @module The cursor of a streamed service log line, and how a resume continues after it.
 *
 * A service's log gathers its tasks' logs from every node: each task's lines come in their own
 * order (their container's log), but the tasks' lines interleave as the nodes send them, not by
 * time (verified on 20.10: a node's backlog can arrive after another node's newer lines). So no
 * single line's position says what was delivered before it. The cursor says it per task and
 * stream ({@link streamKey}): for every one a line was delivered of, the last one (its engine timestamp and its position among
 * that task's lines sharing the timestamp, as container log cursors do), plus the floor the
 * stream reads from. A resume reads the service's log again from the floor (the engine's `since`
 * is inclusive at nanosecond precision for services too) and skips, per task, every line up to
 * and including the one named: no duplicate, and no gap for any task, those with no line
 * delivered yet included (their lines from the floor on are all new).
 *
 * Written as `s1_<floor ns>_<task>[.2]-<ns>[-<index>]_…`: letters, digits, `.`, `_` and `-` only, so it
 * travels as it is in `Last-Event-ID` and in `?cursor=`.
 */
import { nanosToEngineTime } from './time.ts'

/** Tasks a cursor names at most: a service's tasks, retained ones included, are far fewer. */
export const MAX_CURSOR_TASKS = 256
/** The longest cursor text: {@link MAX_CURSOR_TASKS} entries. */
export const MAX_CURSOR_LENGTH = 16 * 1024

export interface TaskPosition {
  /** Nanoseconds since the epoch, as digits. */
  nanos: string
  /** 0 for the task's first line with this timestamp, 1 for the second… */
  index: number
}

export interface ServiceLogCursor {
  /** Where the stream reads from: nanoseconds since the epoch, as digits (`0`: the whole log). */
  floor: string
  /** Per task id, the last line delivered. */
  tasks: ReadonlyMap<string, TaskPosition>
}

const PREFIX = 's1_'
const NANOS = /^\d{1,20}$/
/** A task's stdout is its id; its stderr is its id and `.2` (a stream's own order: below). */
const TASK = /^[a-z0-9]{1,64}(?:\.2)?$/

/**
 * Where a line counts in the cursor: its task and stream. The engine timestamps stdout and stderr
 * as two readers of two pipes, so one task's log can hold a stderr line stamped before the
 * stdout line written ahead of it (verified on 20.10); each stream alone is in time order.
 */
export const streamKey = (task: string, stream: 'stdout' | 'stderr') =>
  stream === 'stderr' ? `${task}.2` : task

export function encodeServiceCursor(cursor: ServiceLogCursor): string {
  let text = PREFIX + cursor.floor
  for (const [task, position] of cursor.tasks) text += `_${entryText(task, position)}`
  return text
}

export const entryText = (task: string, { nanos, index }: TaskPosition) =>
  index === 0 ? `${task}-${nanos}` : `${task}-${nanos}-${index}`

export function decodeServiceCursor(text: string): ServiceLogCursor | undefined {
  if (!text.startsWith(PREFIX) || text.length > MAX_CURSOR_LENGTH) return undefined
  const [floor, ...entries] = text.slice(PREFIX.length).split('_')
  if (floor === undefined || !NANOS.test(floor) || entries.length > MAX_CURSOR_TASKS) {
    return undefined
  }
  const tasks = new Map<string, TaskPosition>()
  for (const entry of entries) {
    const [task, nanos, index = '0', extra] = entry.split('-')
    if (extra !== undefined || !task || !TASK.test(task) || !nanos || !NANOS.test(nanos)) {
      return undefined
    }
    if (!/^\d{1,9}$/.test(index) || tasks.has(task)) return undefined
    tasks.set(task, { nanos, index: Number(index) })
  }
  return { floor, tasks }
}

/** `2026-11-29T03:40:53.902667431Z` → nanoseconds since the epoch, as digits; undefined if not one. */
export function timeToNanos(time: string): string | undefined {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z$/.exec(time)
  if (!match) return undefined
  const ms = Date.parse(`${match[1]}Z`)
  if (!Number.isFinite(ms) || ms < 0) return undefined
  return (BigInt(ms / 1000) * 1_000_000_000n + BigInt(match[2]!)).toString()
}

/** The engine's `seconds.nanoseconds` → nanoseconds, as digits. */
export function engineTimeToNanos(time: string): string {
  const [seconds = '0', fraction = ''] = time.split('.')
  return (BigInt(seconds) * 1_000_000_000n + BigInt(fraction.padEnd(9, '0') || '0')).toString()
}

const compareNanos = (a: string, b: string) =>
  a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0

/**
 * Numbers a service's lines per task as they stream, drops those a resume already delivered,
 * and names each with the cursor that resumes after it (its SSE id).
 */
export class ServiceCursorIds {
  /** Undefined until the first line of a stream read with `tail`: see the constructor. */
  #floor: string | undefined
  readonly #delivered: ReadonlyMap<string, TaskPosition>
  /** Per task: the last line numbered (delivered or skipped), and its text in the cursor. */
  readonly #tasks = new Map<string, { time: string; nanos: string; index: number; text: string }>()
  #text: string | undefined
  /** The floor is the earliest line delivered (a stream read with `tail`). */
  #tailed = false

  /**
   * @param floor where the stream reads from (`since`, in ns; `'0'` for the whole log), or
   * undefined for a stream read with `tail`: its floor is then the earliest line it delivers.
   * @param resumeAfter the cursor a resume continues after (its floor wins).
   */
  constructor(floor: string | undefined, resumeAfter?: ServiceLogCursor) {
    this.#floor = resumeAfter?.floor ?? floor
    this.#delivered = resumeAfter?.tasks ?? new Map()
    for (const [task, position] of this.#delivered) {
      this.#tasks.set(task, { time: '', ...position, text: entryText(task, position) })
    }
  }

  /** The floor a read from this cursor starts at (engine time), or undefined for the whole log. */
  get since(): string | undefined {
    return this.#floor === undefined || this.#floor === '0'
      ? undefined
      : nanosToEngineTime(this.#floor)
  }

  /**
   * The id of the task's next line, or undefined when a resume delivered it before (or its
   * time is not an engine timestamp, which the engine never sends).
   */
  next(task: string, time: string): string | undefined {
    let entry = this.#tasks.get(task)
    const sameTime = entry !== undefined && entry.time === time
    const nanos = sameTime ? entry!.nanos : timeToNanos(time)
    if (nanos === undefined) return undefined
    // A resume reads every line from the floor on: the numbering within a timestamp starts
    // over there as it did when the lines were first delivered.
    const index = sameTime ? entry!.index + 1 : 0
    if (entry === undefined) {
      if (this.#tasks.size >= MAX_CURSOR_TASKS) {
        // The oldest task leaves the cursor: a resume may repeat its lines, never miss one.
        this.#tasks.delete(this.#tasks.keys().next().value!)
      }
      entry = { time, nanos, index, text: '' }
      this.#tasks.set(task, entry)
    }
    entry.time = time
    entry.nanos = nanos
    entry.index = index
    const delivered = this.#delivered.get(task)
    if (
      delivered !== undefined &&
      (compareNanos(nanos, delivered.nanos) < 0 ||
        (nanos === delivered.nanos && index <= delivered.index))
    ) {
      return undefined
    }
    entry.text = entryText(task, { nanos, index })
    if (this.#floor === undefined || (this.#tailed && compareNanos(nanos, this.#floor) < 0)) {
      this.#floor = nanos
      this.#tailed = true
    }
    this.#text = undefined
    return this.current()
  }

  /** The cursor after everything named so far. */
  current(): string {
    if (this.#text === undefined) {
      let text = PREFIX + (this.#floor ?? '0')
      for (const entry of this.#tasks.values()) if (entry.text) text += `_${entry.text}`
      this.#text = text
    }
    return this.#text
  }
}
