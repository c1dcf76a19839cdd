/**
 * @module Noticing when a byte stream ends, however it ends.
 */

/**
 * A stream that calls each listener given to `onEnd` exactly once when it ends, however it ends:
 * {@link onBodyEnd} then subscribes instead of wrapping the stream, which saves a read, an
 * enqueue and a promise per chunk on long-lived streams.
 */
export abstract class EndReportingStream extends ReadableStream<Uint8Array> {
  abstract onEnd(listener: () => void): void
}

/**
 * The same body, calling `onEnd` exactly once when it is fully read, fails or is cancelled:
 * how a stream slot is given back whichever way the client leaves.
 */
export function onBodyEnd(
  body: ReadableStream<Uint8Array>,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  if (body instanceof EndReportingStream) {
    body.onEnd(onEnd)
    return body
  }
  const reader = body.getReader()
  let ended = false
  const end = () => {
    if (!ended) {
      ended = true
      onEnd()
    }
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          end()
          controller.close()
        } else {
          controller.enqueue(value)
        }
      } catch (error) {
        end()
        controller.error(error)
      }
    },
    cancel(reason) {
      end()
      return reader.cancel(reason)
    },
  })
}
