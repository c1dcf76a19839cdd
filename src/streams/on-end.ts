/**
 * @module Noticing when a byte stream ends, however it ends.
 */

type EndSubscriber = (onEnd: () => void) => void

/** Streams that report their own end (see {@link reportsEnd}). */
const endReporters = new WeakMap<ReadableStream<Uint8Array>, EndSubscriber>()

/**
 * Marks `body` as a stream that calls each listener given to `subscribe` exactly once when it
 * ends, however it ends: {@link onBodyEnd} then subscribes instead of wrapping the stream, which
 * saves a read, an enqueue and a promise per chunk on long-lived streams.
 */
export function reportsEnd(body: ReadableStream<Uint8Array>, subscribe: EndSubscriber): void {
  endReporters.set(body, subscribe)
}

/**
 * The same body, calling `onEnd` exactly once when it is fully read, fails or is cancelled:
 * how a stream slot is given back whichever way the client leaves.
 */
export function onBodyEnd(
  body: ReadableStream<Uint8Array>,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const subscribe = endReporters.get(body)
  if (subscribe) {
    subscribe(onEnd)
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
