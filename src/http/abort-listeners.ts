/**
 * @module Many listeners on one long-lived AbortSignal.
 *
 * Every open event stream listens for the gateway's shutdown. `removeEventListener` walks an
 * EventTarget's listeners, so 10,000 streams leaving one by one cost 10,000² steps; a Set per
 * signal, behind one real listener, makes each removal O(1).
 */

const listenersBySignal = new WeakMap<AbortSignal, Set<() => void>>()

/**
 * Calls `listener` once when `signal` aborts (at once if it already has). Answers the function
 * that removes it.
 */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  if (signal.aborted) {
    listener()
    return () => {}
  }
  let listeners = listenersBySignal.get(signal)
  if (!listeners) {
    const created = new Set<() => void>()
    listeners = created
    listenersBySignal.set(signal, created)
    signal.addEventListener(
      'abort',
      () => {
        listenersBySignal.delete(signal)
        for (const each of created) each()
      },
      { once: true },
    )
  }
  const set = listeners
  set.add(listener)
  return () => {
    set.delete(listener)
  }
}
