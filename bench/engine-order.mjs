#!/usr/bin/env node
/**
 * When the engine hands an event to each of its `/events` connections (ad hoc, beside phase 4a):
 * N subscribers opened one after another from this process, with the same filter, then container
 * renames 20 ms apart. For each place in the order the connections were opened: how often it
 * was the first to receive an event, and its median time after the first receipt. bench/README.md,
 * "One subscriber's latency, ninth look".
 *
 *   node bench/engine-order.mjs [--subscribers=3] [--renames=100]
 *
 * Needs the engine (DOCKER_HOST=unix://…) and the fixture image (DOCKGATE_FIXTURE_IMAGE); its two
 * containers are removed on the way out.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { Engine } from './lib/engine.mjs'
import { median, nowMs, option, round, sleep } from './lib/util.mjs'

const COUNT = Number(option('subscribers', '3'))
const RENAMES = Number(option('renames', '100'))
const socketPath = (process.env.DOCKER_HOST ?? '').replace(/^unix:\/\//, '')
const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'
const engine = new Engine(socketPath)
const runId = randomBytes(4).toString('hex')
const filters = encodeURIComponent(
  JSON.stringify({ type: ['container'], label: [`dockgate-bench=${runId}`] }),
)

const received = new Map() // timeNano → receipt per place
const sockets = []
const containers = []
try {
  for (let place = 0; place < COUNT; place++) {
    const socket = net.connect({ path: socketPath })
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.on('data', (chunk) => {
      const t = nowMs()
      for (const [, nano] of chunk.toString('latin1').matchAll(/"timeNano":(\d+)/g)) {
        const times = received.get(nano) ?? []
        times[place] ??= t
        received.set(nano, times)
      }
    })
    socket.write(`GET /events?filters=${filters} HTTP/1.1\r\nHost: docker\r\n\r\n`)
    sockets.push(socket)
    // Opened in this order at the engine, not at once.
    await sleep(100)
  }
  for (let i = 0; i < 2; i++) {
    const name = `dockgate-bench-${runId}-order${i}`
    const labels = { 'dockgate-bench': runId }
    containers.push({
      id: await engine.createContainer({ name, image, cmd: ['true'], labels }),
      name,
    })
  }
  await sleep(300)
  received.clear()
  for (let n = 0; n < RENAMES; n++) {
    const { id, name } = containers[n % 2]
    await engine.json(
      'POST',
      `/containers/${id}/rename?name=${encodeURIComponent(`${name}-r${n}`)}`,
    )
    await sleep(20)
  }
  await sleep(300)
  const first = Array(COUNT).fill(0)
  const after = Array.from({ length: COUNT }, () => [])
  for (const times of received.values()) {
    if (times.filter((t) => t !== undefined).length < COUNT) continue
    const earliest = Math.min(...times)
    first[times.indexOf(earliest)] += 1
    for (const [place, t] of times.entries()) after[place].push(t - earliest)
  }
  console.log(
    after
      .map(
        (ms, place) =>
          `place ${place + 1}: first ${first[place]} times, median ${round(median(ms), 3)} ms after the first`,
      )
      .join('\n'),
  )
} finally {
  for (const socket of sockets) socket.destroy()
  for (const { id } of containers) await engine.request('DELETE', `/containers/${id}?force=true`)
}
