/**
 * @module The opaque cursor of a streamed log line, and how a resume continues after it.
 *
 * A line is identified by its engine timestamp and its position among the lines that share
 * that timestamp (many can: a burst, or the partials of one long line). The engine's `since`
 * is inclusive at nanosecond precision (engine-api-facts §1.5), so a resume asks for lines from
 * that timestamp and skips the ones already delivered: no duplicate, no gap.
 */
export interface LogCursor {
  /** The engine timestamp, e.g. `2026-11-29T03:40:53.902667431Z`. */
  time: string
  /** 0 for the first line with this timestamp, 1 for the second… */
  index: number
}

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/

export function encodeCursor(cursor: LogCursor): string {
  return btoa(`${cursor.time}/${cursor.index}`)
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '')
}

export function decodeCursor(text: string): LogCursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(text)) return undefined
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
    this.#index = time === this.#time ? this.#index + 1 : 0
    this.#time = time
    const after = this.#resumeAfter
    if (after && time === after.time && this.#index <= after.index) return undefined
    return { time, index: this.#index }
  }
}

/**
 * Names streamed lines with their cursors (the SSE event ids) and remembers the last one named:
 * where a catch-up read continues.
 */
export class CursorIds {
  readonly #numbering: LineNumbering
  #last: LogCursor | undefined

  constructor(resumeAfter?: LogCursor) {
    this.#numbering = new LineNumbering(resumeAfter)
    this.#last = resumeAfter
  }

  /** The id of the next line, or undefined when it was delivered before the resume. */
  next(time: string): string | undefined {
    const cursor = this.#numbering.next(time)
    if (!cursor) return undefined
    this.#last = cursor
    return encodeCursor(cursor)
  }

  /** The cursor of the last line named, else the one resumed after. */
  get last(): LogCursor | undefined {
    return this.#last
  }
}
