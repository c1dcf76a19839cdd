/**
 * The floor of the events fan-out: the least a Node process can do to deliver a burst to N
 * event-stream clients. A bare `node:http` server holds every GET open as an event stream; a
 * `POST /burst?size=N` writes N messages, stamped with the current time as their id, to every
 * client in one write each (the best case: nothing to filter, encode or batch), 500 clients per
 * turn of the event loop. Run as a child process by the bench: `node bench/lib/sse-floor.mjs`,
 * port in `PORT`.
 */
import http from 'node:http'
import { wallClockMs } from './util.mjs'

const SLICE = 500
// About the size of a container event as the gateway sends it.
const PADDING = 'x'.repeat(560)
const clients = []

/** Wall-clock nanoseconds, as the engine's timeNano. */
const nowNanos = () => BigInt(Math.round(wallClockMs() * 1e3)) * 1000n

function writeToAll(chunk) {
  let next = 0
  const slice = () => {
    const end = Math.min(next + SLICE, clients.length)
    for (; next < end; next++) clients[next].write(chunk)
    if (next < clients.length) setImmediate(slice)
  }
  slice()
}

const server = http.createServer((request, response) => {
  if (request.method === 'POST') {
    const size = Number(new URL(request.url ?? '/', 'http://floor').searchParams.get('size') ?? 1)
    let text = ''
    for (let i = 0; i < size; i++) {
      text += `event: container\nid: ${nowNanos()}\ndata: {"padding":"${PADDING}"}\n\n`
    }
    writeToAll(Buffer.from(text))
    response.writeHead(204).end()
    return
  }
  if (request.url === '/healthz') {
    response.end('ok')
    return
  }
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  response.write(': stream open\n\n')
  clients.push(response)
  response.on('close', () => clients.splice(clients.indexOf(response), 1))
})
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
