/**
 * @module The fixed bytes around each line of the container and service log streams' SSE
 * messages (`event: stdout|stderr`, `id:`, `data: {"time":…,"text":…}`), which both encoders
 * write as bytes (src/streams/byte-writer.ts says why).
 */
import type { LogLine } from './lines.ts'

/** The bytes of a text that is plain ASCII, one per character. */
export const asciiBytes = (text: string): Uint8Array =>
  Uint8Array.from(text, (char) => char.charCodeAt(0))

/** The message's start, up to its id. */
export const EVENT_PREFIX: Record<LogLine['stream'], Uint8Array> = {
  stdout: asciiBytes('event: stdout\nid: '),
  stderr: asciiBytes('event: stderr\nid: '),
}
/** After the id: the data line, up to the line's timestamp. */
export const TIME_PREFIX = asciiBytes('\ndata: {"time":"')
/** Before the line's JSON-escaped text. */
export const TEXT_PREFIX = asciiBytes('","text":"')
/** The data's end and the blank line that dispatches the message. */
export const MESSAGE_END = asciiBytes('"}\n\n')
