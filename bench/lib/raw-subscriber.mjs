/**
 * One event stream read off a raw socket, for the latency phases (4a, 4e): each chunk is stamped
 * as its `data` callback starts, before anything else is done with it, and every match of
 * `pattern` in it (its first group: the event's id) is handed to `onEvent(id, receivedAtMs)`.
 * Raw sockets, not an HTTP client: a client's own buffering would move the stamps.
 */
import net from 'node:net'
import { nowMs } from './util.mjs'

/**
 * Resolves to the socket once the answer's status line says 200; rejects otherwise.
 * `connect`: a `net.connect` options object; `request`: the whole request head; `pattern`: a
 * global regular expression; `carryBytes`: how much of a chunk's tail is kept for a match split
 * across two chunks.
 */
export function rawSubscriber({ connect, request, pattern, onEvent, carryBytes = 200 }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(connect)
    socket.setNoDelay(true)
    let carry = ''
    let open = false
    socket.on('connect', () => socket.write(request))
    socket.on('data', (chunk) => {
      const t = nowMs()
      let text = carry + chunk.toString('latin1')
      if (!open) {
        if (text.length < 12) {
          carry = text
          return
        }
        if (!text.startsWith('HTTP/1.1 200')) {
          socket.destroy()
          reject(new Error(`subscribe: ${text.slice(0, 160)}`))
          return
        }
        open = true
        resolve(socket)
      }
      pattern.lastIndex = 0
      let lastEnd = 0
      for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
        onEvent(m[1], t)
        lastEnd = pattern.lastIndex
      }
      text = text.slice(Math.max(lastEnd, text.lastIndexOf('\n')))
      carry = text.length > carryBytes ? text.slice(-carryBytes) : text
    })
    socket.on('error', (error) => (open ? undefined : reject(error)))
  })
}
