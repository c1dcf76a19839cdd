/**
 * @module Parsing server-sent events, as a browser's `EventSource` does.
 *
 * Follows the event-stream interpretation of WHATWG HTML ("Server-sent events"), so that tests
 * and clients see what a browser would see, not what the encoder meant to send.
 */

/** One dispatched event. */
export interface ParsedSseEvent {
  /** The event type: the last `event` field of the block, or `message`. */
  event: string
  /** The `data` lines of the block, joined with `\n`. */
  data: string
  /** The last event id: the last valid `id` field so far in the stream, or `undefined` if none. */
  id: string | undefined
  /** The reconnection time: the last valid `retry` field so far in the stream, if any. */
  retry?: number
}

const LINE_FEED = 0x0a
const CARRIAGE_RETURN = 0x0d
const BYTE_ORDER_MARK = '\uFEFF'

/**
 * Turns event-stream text into {@link ParsedSseEvent}s.
 *
 * Lines end with `\r\n`, `\r` or `\n`, anywhere across chunks. A blank line dispatches the block
 * read so far, unless it holds no `data` field. `id` and `retry` persist from block to block
 * (an `id` with NUL and a `retry` that is not all digits are ignored); comments and unknown
 * fields are ignored. A block the stream ends inside is not dispatched. One BOM at the start is
 * skipped (`TextDecoderStream` already drops it from bytes).
 *
 * @example
 * ```ts
 * const events = response.body
 *   .pipeThrough(new TextDecoderStream())
 *   .pipeThrough(new SseParserStream())
 * ```
 */
export class SseParserStream extends TransformStream<string, ParsedSseEvent> {
  constructor() {
    const parser = new EventStreamParser()
    super({ transform: (chunk, controller) => parser.push(chunk, controller) })
  }
}

type EventController = TransformStreamDefaultController<ParsedSseEvent>

class EventStreamParser {
  #atStart = true
  // A chunk ended with `\r`: a `\n` at the start of the next one belongs to the same line break
  #afterCarriageReturn = false
  #pendingLine: string[] = []
  // The buffers of the spec's event-stream interpretation
  #data = ''
  #hasData = false
  #eventType = ''
  #lastEventId: string | undefined
  #retry: number | undefined

  push(chunk: string, controller: EventController): void {
    if (chunk === '') return
    let text = chunk
    if (this.#atStart) {
      this.#atStart = false
      if (text.startsWith(BYTE_ORDER_MARK)) text = text.slice(1)
    }
    let start = 0
    if (this.#afterCarriageReturn) {
      this.#afterCarriageReturn = false
      if (text.charCodeAt(0) === LINE_FEED) start = 1
    }
    for (let index = start; index < text.length; index++) {
      const code = text.charCodeAt(index)
      if (code !== LINE_FEED && code !== CARRIAGE_RETURN) continue
      this.#pendingLine.push(text.slice(start, index))
      const line = this.#pendingLine.join('')
      this.#pendingLine = []
      this.#processLine(line, controller)
      if (code === CARRIAGE_RETURN) {
        if (index + 1 === text.length) this.#afterCarriageReturn = true
        else if (text.charCodeAt(index + 1) === LINE_FEED) index++
      }
      start = index + 1
    }
    if (start < text.length) this.#pendingLine.push(text.slice(start))
  }

  #processLine(line: string, controller: EventController): void {
    if (line === '') {
      this.#dispatch(controller)
      return
    }
    const colon = line.indexOf(':')
    if (colon === 0) return
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        this.#eventType = value
        break
      case 'data':
        this.#data += this.#hasData ? `\n${value}` : value
        this.#hasData = true
        break
      case 'id':
        if (!value.includes('\0')) this.#lastEventId = value
        break
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.#retry = Number.parseInt(value, 10)
        break
    }
  }

  #dispatch(controller: EventController): void {
    if (this.#hasData) {
      const event: ParsedSseEvent = {
        event: this.#eventType === '' ? 'message' : this.#eventType,
        data: this.#data,
        id: this.#lastEventId,
      }
      if (this.#retry !== undefined) event.retry = this.#retry
      controller.enqueue(event)
    }
    this.#data = ''
    this.#hasData = false
    this.#eventType = ''
  }
}
