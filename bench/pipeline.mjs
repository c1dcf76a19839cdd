/**
 * 3b. The in-process log pipeline on an in-memory buffer: multiplexed bytes → DemuxStream →
 * LogLineStream → what the log-stream route does per line (cursor, JSON, SSE encoding, UTF-8),
 * built from the gateway's own compiled modules in dist/. Also the stages alone, to show where
 * the time goes. Input rate in MB/s (10^6 bytes) of multiplexed input.
 */
import { encodeCursor, LineNumbering } from '../dist/routes/log-cursor.js'
import { DemuxStream, encodeSse, LogLineStream } from '../dist/streams/index.js'
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

/** What `deliverLines` and the SSE sink do with one line. */
function sseStage() {
  const numbering = new LineNumbering()
  const encoder = new TextEncoder()
  return new TransformStream({
    transform(line, controller) {
      const cursor = numbering.next(line.time)
      const data = JSON.stringify({ time: line.time, text: line.text })
      controller.enqueue(
        encoder.encode(encodeSse({ event: line.stream, id: encodeCursor(cursor), data })),
      )
    },
  })
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
  demux: (input) => input.pipeThrough(new DemuxStream()),
  'demux+lines': (input) => input.pipeThrough(new DemuxStream()).pipeThrough(new LogLineStream()),
  'demux+lines+sse': (input) =>
    input.pipeThrough(new DemuxStream()).pipeThrough(new LogLineStream()).pipeThrough(sseStage()),
}

export async function runPipeline({ totalMb, frameBytes = 16_384, chunkBytes = 65_536, reps }) {
  const block = buildBlock(frameBytes, 8 * 1024 * 1024)
  // Whole frames only
  const frameTotal = frameBytes + HEADER_BYTES
  const totalBytes = Math.round((totalMb * 1_000_000) / frameTotal) * frameTotal
  const results = {}
  // Warm-up: JIT.
  await drain(STAGES['demux+lines+sse'](source(block, frameTotal * 500, chunkBytes)))
  for (const [name, build] of Object.entries(STAGES)) {
    const rates = []
    let out
    for (let rep = 0; rep < reps; rep++) {
      const t0 = nowMs()
      out = await drain(build(source(block, totalBytes, chunkBytes)))
      rates.push(totalBytes / 1e6 / ((nowMs() - t0) / 1000))
    }
    results[name] = { mbPerS: median(rates), reps: rates.map((r) => round(r, 0)), items: out.items }
    log(`  pipeline ${name}: ${round(results[name].mbPerS, 0)} MB/s (${out.items} items)`)
  }
  return { frameBytes, chunkBytes, totalMb, stages: results }
}
