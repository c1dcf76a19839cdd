/** Feeding Web streams from arrays and reading them back, for the stream-stage tests. */

export function readableOf<T>(items: readonly T[]): ReadableStream<T> {
  return new ReadableStream({
    start(controller) {
      for (const item of items) controller.enqueue(item)
      controller.close()
    },
  })
}

export async function collect<T>(readable: ReadableStream<T>): Promise<T[]> {
  const reader = readable.getReader()
  const items: T[] = []
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return items
    items.push(value)
  }
}
