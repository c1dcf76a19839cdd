/**
 * 3b. The in-process log pipeline on an in-memory buffer: multiplexed bytes → what the
 * log-stream route does with them (`pumpLogEvents` through a `LogEventEncoder`: demux, lines,
 * cursor ids, JSON, SSE bytes, one batch per chunk), built from the gateway's own compiled
 * modules in dist/. Also the Web-stream stages the JSON logs route uses (DemuxStream →
 * LogLineStream), to show where the time goes. Input rate in MB/s (10^6 bytes) of multiplexed
 * input.
 */
import { CursorIds } from '../dist/routes/log-cursor.js'
import {
  DemuxStream,
  LogEventEncoder,
  LogLineStream,
  pumpLogEvents,
} from '../dist/streams/index.js'
import { log, median, nowMs, round } from './lib/util.mjs'

const HEADER_BYTES = 8
const TIMESTAMP_BYTES = 31

/**
 * A block of frames of `frameBytes` payload each (timestamp prefix + text + newline), every
 * frame a whole line with its own timestamp; the block is reused to make up the total.
 */
function buildBlock(frameBytes, blockBytes) {
  const frames = Math.max(1, Math.floor(blockBytes / (frameBytes + HEADER_BYTES)))
  const block = Buffer.alloc(frames * (frameBytes + HEADER_BYTES))
  const text = 'y'.repeat(frameBytes - TIMESTAMP_BYTES - 1)
  const base = Date.UTC(2026, 10, 29, 6, 0, 0) / 1000
  let at = 0
  for (let i = 0; i < frames; i++) {
    block[at] = 1 // stdout
    block.writeUInt32BE(frameBytes, at + 4)
    at += HEADER_BYTES
    const seconds = new Date((base + Math.floor(i / 1000)) * 1000).toISOString().slice(0, 19)
    const nanos = String((i % 1000) * 1_000_000 + 123).padStart(9, '0')
    at += block.write(`${seconds}.${nanos}Z ${text}\n`, at, 'latin1')
  }
  return block
}

/** The input as the socket would hand it over: `chunkBytes` views over the repeated block. */
function source(block, totalBytes, chunkBytes) {
  let sent = 0
  let offset = 0
  return new ReadableStream({
    pull(controller) {
      if (sent >= totalBytes) return controller.close()
      const end = Math.min(offset + chunkBytes, block.length, offset + totalBytes - sent)
      controller.enqueue(new Uint8Array(block.buffer, block.byteOffset + offset, end - offset))
      sent += end - offset
      offset = end === block.length ? 0 : end
    },
  })
}

/**
 * What `deliverLines` in src/routes/logs.ts does with the engine's body, the sink's send
 * replaced by counting: items are batches of SSE messages (one per input chunk).
 */
async function sseRoute(input) {
  const ids = new CursorIds()
  const encoder = new LogEventEncoder({ tty: false, eventId: (time) => ids.next(time) })
  let items = 0
  let bytes = 0
  await pumpLogEvents(input, encoder, async (messages) => {
    items += 1
    bytes += messages.byteLength
    return true
  })
  return { items, bytes }
}

async function drain(stream) {
  let items = 0
  let bytes = 0
  const reader = stream.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return { items, bytes }
    items += 1
    bytes += value?.byteLength ?? 0
  }
}

const STAGES = {
  demux: (input) => drain(input.pipeThrough(new DemuxStream())),
  'demux+lines': (input) =>
    drain(input.pipeThrough(new DemuxStream()).pipeThrough(new LogLineStream())),
  'demux+lines+sse': sseRoute,
}

export async function runPipeline({ totalMb, frameBytes = 16_384, chunkBytes = 65_536, reps }) {
  const block = buildBlock(frameBytes, 8 * 1024 * 1024)
  // Whole frames only
  const frameTotal = frameBytes + HEADER_BYTES
  const totalBytes = Math.round((totalMb * 1_000_000) / frameTotal) * frameTotal
  const results = {}
  // Warm-up: JIT.
  await STAGES['demux+lines+sse'](source(block, frameTotal * 500, chunkBytes))
  for (const [name, build] of Object.entries(STAGES)) {
    const rates = []
    let out
    for (let rep = 0; rep < reps; rep++) {
      const t0 = nowMs()
      out = await build(source(block, totalBytes, chunkBytes))
      rates.push(totalBytes / 1e6 / ((nowMs() - t0) / 1000))
    }
    results[name] = { mbPerS: median(rates), reps: rates.map((r) => round(r, 0)), items: out.items }
    log(`  pipeline ${name}: ${round(results[name].mbPerS, 0)} MB/s (${out.items} items)`)
  }
  return { frameBytes, chunkBytes, totalMb, stages: results }
}
