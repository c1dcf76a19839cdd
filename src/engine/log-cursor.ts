/**
 * @module The cursor of a streamed log line, and how a resume continues after it.
 *
 * A line is identified by its engine timestamp and its position among the lines that share
 * that timestamp (many can: a burst, or the partials of one long line). The engine's `since`
 * is inclusive at nanosecond precision (docs/engine-notes.md#since-and-until), so a resume asks
 * for lines from that timestamp and skips the ones already delivered: no duplicate, no gap.
 *
 * A cursor is written as the timestamp in nanoseconds since the epoch, like the `timeNano` ids
 * of the events stream, followed by `.` and the position when it is not the first line of its
 * timestamp: `1795923653902667431`, `1795923653902667431.1`. It is made for every line streamed,
 * so it is built from the timestamp's text with one date computation per second, not per line.
 * Cursors of earlier versions (base64url of `<time>/<index>`) are still accepted.
 */
export interface LogCursor {
  /** The engine timestamp, e.g. `2026-11-29T03:40:53.902667431Z`. */
  time: string
  /** 0 for the first line with this timestamp, 1 for the second… */
  index: number
}

const TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z$/
const NANOS_CURSOR = /^(\d{1,12})(\d{9})(?:\.(\d{1,9}))?$/
const LEGACY_CURSOR = /^[A-Za-z0-9_-]{1,80}$/
/** `YYYY-MM-DDTHH:MM:SS`: the part of a timestamp that names its second. */
const SECOND_LENGTH = 19

export function encodeCursor(cursor: LogCursor): string {
  const parts = timeParts(cursor.time)
  return parts ? cursorText(parts.seconds, parts.nanos, cursor.index) : legacyCursor(cursor)
}

export function decodeCursor(text: string): LogCursor | undefined {
  const nanos = NANOS_CURSOR.exec(text)
  if (nanos) return fromNanos(nanos[1] ?? '', nanos[2] ?? '', nanos[3])
  return LEGACY_CURSOR.test(text) ? fromLegacy(text) : undefined
}

function cursorText(seconds: string, nanos: string, index: number): string {
  return index === 0 ? seconds + nanos : `${seconds}${nanos}.${index}`
}

/**
 * An engine timestamp's second (`YYYY-MM-DDTHH:MM:SS`), that second since the epoch and its
 * nanoseconds; undefined when it is not one, or names no date.
 */
function timeParts(time: string): { second: string; seconds: string; nanos: string } | undefined {
  const [, second, nanos] = TIME.exec(time) ?? []
  if (second === undefined || nanos === undefined) return undefined
  const ms = Date.parse(`${second}Z`)
  if (!Number.isFinite(ms) || ms < 0) return undefined
  // Date.parse rolls an impossible date (Feb 30) over; the engine never writes one
  if (new Date(ms).toISOString().slice(0, SECOND_LENGTH) !== second) return undefined
  return { second, seconds: String(ms / 1000), nanos }
}

function fromNanos(seconds: string, nanos: string, index: string | undefined) {
  const ms = Number(seconds) * 1000
  if (!Number.isSafeInteger(ms) || ms > MAX_DATE_MS) return undefined
  const second = new Date(ms).toISOString().slice(0, SECOND_LENGTH)
  return { time: `${second}.${nanos}Z`, index: index === undefined ? 0 : Number(index) }
}

// The last second a four-digit year holds (9999-12-31T23:59:59Z): timestamps are written so
const MAX_DATE_MS = 253_402_300_799_000

/** The earlier form, still what a time with no date behind it (Feb 30) is written as. */
function legacyCursor(cursor: LogCursor): string {
  return btoa(`${cursor.time}/${cursor.index}`)
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '')
}

function fromLegacy(text: string): LogCursor | undefined {
  let decoded: string
  try {
    decoded = atob(text.replaceAll('-', '+').replaceAll('_', '/'))
  } catch {
    return undefined
  }
  const [time, index, extra] = decoded.split('/')
  if (extra !== undefined || !time || !TIME.test(time) || !index || !/^\d{1,9}$/.test(index)) {
    return undefined
  }
  return { time, index: Number(index) }
}

/**
 * Numbers lines as they stream; after a resume, drops the lines up to and including the cursor.
 * Returns the cursor for a line, or undefined when it was delivered before.
 */
export class LineNumbering {
  #time: string | undefined
  #index = -1
  readonly #resumeAfter: LogCursor | undefined

  constructor(resumeAfter?: LogCursor) {
    this.#resumeAfter = resumeAfter
  }

  next(time: string): LogCursor | undefined {
    const index = this.nextIndex(time)
    return index === undefined ? undefined : { time, index }
  }

  /** As {@link next}, the position alone (no object per line). */
  nextIndex(time: string): number | undefined {
    this.#index = time === this.#time ? this.#index + 1 : 0
    this.#time = time
    const after = this.#resumeAfter
    if (after && time === after.time && this.#index <= after.index) return undefined
    return this.#index
  }
}

/**
 * Names streamed lines with their cursors (the SSE event ids) and remembers the last one named:
 * where a catch-up read continues.
 */
export class CursorIds {
  readonly #numbering: LineNumbering
  #lastTime: string | undefined
  #lastIndex = 0
  // The second of the last time named, and its seconds since the epoch
  #second = ''
  #seconds = ''

  constructor(resumeAfter?: LogCursor) {
    this.#numbering = new LineNumbering(resumeAfter)
    this.#lastTime = resumeAfter?.time
    this.#lastIndex = resumeAfter?.index ?? 0
  }

  /**
   * The id of the next line (`time` an engine timestamp, as `readTimestampPrefix` reads it), or
   * undefined when it was delivered before the resume.
   */
  next(time: string): string | undefined {
    const index = this.#numbering.nextIndex(time)
    if (index === undefined) return undefined
    this.#lastTime = time
    this.#lastIndex = index
    if (this.#second === '' || !time.startsWith(this.#second)) {
      if (!this.#newSecond(time)) return encodeCursor({ time, index })
    }
    return cursorText(this.#seconds, time.slice(SECOND_LENGTH + 1, SECOND_LENGTH + 10), index)
  }

  /** The cursor of the last line named, else the one resumed after. */
  get last(): LogCursor | undefined {
    return this.#lastTime === undefined
      ? undefined
      : { time: this.#lastTime, index: this.#lastIndex }
  }

  /** Remembers the second of `time`; false when it names no date (it is then not remembered). */
  #newSecond(time: string): boolean {
    const parts = timeParts(time)
    if (!parts) return false
    this.#second = parts.second
    this.#seconds = parts.seconds
    return true
  }
}
