/**
 * @module A later turn of the event loop, after pending I/O.
 */

/**
 * Runs `callback` on a later turn of the event loop, after pending I/O: `setImmediate` where the
 * runtime has it (Node, Deno), else a zero timeout.
 */
export function nextTurn(callback: () => void): void {
  const immediate = (globalThis as { setImmediate?: (callback: () => void) => unknown })
    .setImmediate
  if (immediate) immediate(callback)
  else setTimeout(callback, 0)
}
