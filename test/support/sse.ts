/**
 * Reads a server-sent events response as a client would (WHATWG parsing, via the project's own
 * parser), one event at a time, and can hang up at any point.
 */
import { type ParsedSseEvent, SseParserStream } from './sse-parse.ts'

export interface SseReader {
  /** The next event, or undefined when the stream ended. Rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<ParsedSseEvent | undefined>
  /** The next `count` events, failing if the stream ends first. */
  take(count: number, timeoutMs?: number): Promise<ParsedSseEvent[]>
  /** Events until one of this type (included) or the end. */
  until(event: string, timeoutMs?: number): Promise<ParsedSseEvent[]>
  /** Every event until the stream ends (each awaited for at most `timeoutMs`). */
  rest(timeoutMs?: number): Promise<ParsedSseEvent[]>
  /** Hangs up, as a client that goes away. */
  close(): Promise<void>
}

export function readSse(response: Response): SseReader {
  if (!response.body) throw new Error('no body')
  const reader = response.body
    .pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>)
    .pipeThrough(new SseParserStream())
    .getReader()
  const next = async (timeoutMs = 10_000) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      const { done, value } = await Promise.race([reader.read(), timeout])
      return done ? undefined : value
    } finally {
      clearTimeout(timer)
    }
  }
  return {
    next,
    async take(count, timeoutMs = 10_000) {
      const received: ParsedSseEvent[] = []
      while (received.length < count) {
        const event = await next(timeoutMs)
        if (!event) throw new Error(`the stream ended after ${JSON.stringify(received)}`)
        received.push(event)
      }
      return received
    },
    async until(event, timeoutMs = 10_000) {
      const events: ParsedSseEvent[] = []
      for (;;) {
        const value = await next(timeoutMs)
        if (!value) return events
        events.push(value)
        if (value.event === event) return events
      }
    },
    async rest(timeoutMs = 10_000) {
      const events: ParsedSseEvent[] = []
      for (let value = await next(timeoutMs); value; value = await next(timeoutMs))
        events.push(value)
      return events
    },
    close: () => reader.cancel(),
  }
}
