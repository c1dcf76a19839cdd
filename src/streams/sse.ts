/**
 * @module Encoding server-sent events (WHATWG HTML, "Server-sent events").
 *
 * A message is a block of `field: value` lines ended by a blank line. A value cannot hold a line
 * break, so `data` is split into several `data:` lines, which the client joins with `\n`: a `\r`
 * does not survive (docs/engine-notes.md#server-sent-events). Send JSON, whose strings escape it.
 */

/** One message. Fields left out are not written. */
export interface SseMessage {
  /** The event type; the client's default is `message`. No CR or LF. */
  event?: string
  /** The payload. Line breaks (`\r\n`, `\r`, `\n`) reach the client as `\n`. */
  data?: string
  /** The last event id the client sends back on reconnect; `''` resets it. No CR, LF or NUL. */
  id?: string
  /** The client's reconnection delay in milliseconds. */
  retry?: number
  /** Ignored by clients; a message with only a comment is a heartbeat. */
  comment?: string
}

const LINE_BREAK = /\r\n|\r|\n/

/**
 * Writes a message as event-stream text, ending in the blank line that dispatches it. Fields
 * come in a fixed order: comment, event, id, retry, data.
 *
 * A client dispatches an event only if the message has `data` (even `''`); `id` and `retry`
 * take effect without it. Throws a `SyntaxError` on an `event` or `id` the format cannot carry,
 * and a `RangeError` on a `retry` that is not a non-negative integer.
 *
 * @example
 * ```ts
 * encodeSse({ event: 'die', id: '1795923285422325136', data: '{"exitCode":0}' })
 * // 'event: die\nid: 1795923285422325136\ndata: {"exitCode":0}\n\n'
 * ```
 */
export function encodeSse(message: SseMessage): string {
  let text = ''
  if (message.comment !== undefined) text += lines(':', message.comment)
  if (message.event !== undefined) {
    if (/[\r\n]/.test(message.event)) {
      throw new SyntaxError(
        'Cannot encode server-sent event: event must not contain "\\r" or "\\n"',
      )
    }
    text += `event: ${message.event}\n`
  }
  if (message.id !== undefined) {
    // A client ignores an id with NUL, so it would silently resume from the wrong place
    if (/[\r\n\0]/.test(message.id)) {
      throw new SyntaxError(
        'Cannot encode server-sent event: id must not contain "\\r", "\\n" or "\\0"',
      )
    }
    text += `id: ${message.id}\n`
  }
  if (message.retry !== undefined) {
    if (!Number.isSafeInteger(message.retry) || message.retry < 0) {
      throw new RangeError(
        `Cannot encode server-sent event: retry must be a non-negative integer: current value is ${message.retry}`,
      )
    }
    text += `retry: ${message.retry}\n`
  }
  if (message.data !== undefined) text += lines('data:', message.data)
  return `${text}\n`
}

/** One `prefix value` line per line of the value. The client strips the one space. */
function lines(prefix: string, value: string): string {
  // Fast path: JSON payloads never hold a raw line break.
  if (!value.includes('\n') && !value.includes('\r')) return `${prefix} ${value}\n`
  let text = ''
  for (const line of value.split(LINE_BREAK)) text += `${prefix} ${line}\n`
  return text
}
