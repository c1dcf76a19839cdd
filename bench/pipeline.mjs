/**
 * 3b. The in-process log pipeline on an in-memory buffer: multiplexed bytes → what the
 * log-stream route does with them (`pumpLogEvents` through a `LogEventEncoder`: demux, lines,
 * cursor ids, JSON, SSE bytes, one batch per chunk), built from the gateway's own compiled
 * modules in dist/ (or a `--compare` tree's dist/). Also the Web-stream stages the JSON logs route
 * uses (DemuxStream → LogLineStream), to show where the time goes. Input rate in MB/s (10^6
 * bytes) of multiplexed input.
 *
 * Chunking: one frame per chunk, as the gateway gets the engine's body (the engine writes each
 * log message as an HTTP chunk of its own), views over the block through a `ReadableStream`.
 * Baseline, same run: `copy` reads the same bytes from the same source in the same chunks, copies
 * each chunk into a new buffer (`Uint8Array.prototype.slice`) and hands it to the same counting
 * `send`: the least a stage that must touch every byte costs here. Run on 16 KB frames and on
 * ~100-byte lines.
 */
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
 * What `deliverLines` in src/engine/logs.ts does with the engine's body, the sink's send
 * replaced by counting: items are batches of SSE messages (one per input chunk).
 */
async function sseRoute(input, m) {
  const ids = new m.CursorIds()
  const encoder = new m.LogEventEncoder({ tty: false, eventId: (time) => ids.next(time) })
  let items = 0
  let bytes = 0
  await m.pumpLogEvents(input, encoder, async (messages) => {
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

/** The baseline: the same chunks, each copied once and handed to the same kind of `send`. */
async function copyChunks(input) {
  let items = 0
  let bytes = 0
  const send = async (copy) => {
    items += 1
    bytes += copy.byteLength
    return true
  }
  const reader = input.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return { items, bytes }
    if (!(await send(value.slice()))) return { items, bytes }
  }
}

/** The gateway's stream modules from a dist/ directory. */
export async function loadModules(distDir) {
  const streams = await import(`${distDir}/streams/index.js`)
  const cursor = await import(`${distDir}/engine/log-cursor.js`)
  return { ...streams, CursorIds: cursor.CursorIds }
}

const INFO_STAGES = {
  demux: (input, m) => drain(input.pipeThrough(new m.DemuxStream())),
  'demux+lines': (input, m) =>
    drain(input.pipeThrough(new m.DemuxStream()).pipeThrough(new m.LogLineStream())),
}

/** The frame sizes measured: the 16 KB frames of the first target, and short lines. */
export const PIPELINE_CASES = [
  { name: '16k', frameBytes: 16_384, title: '16 KB frames', share: 1, info: true },
  // Per line costs dominate: a smaller total keeps the phase short.
  { name: 'short', frameBytes: 100, title: '100-byte lines', share: 1 / 16, info: false },
]

/**
 * Per frame size: the baseline and `demux → lines → SSE` of each variant, alternating rep by rep
 * (machine noise falls on both); the Web-stream stages of the first variant for information.
 * `variants`: [{ key, dist }].
 */
export async function runPipeline({ totalMb, chunking = 'frame', reps, variants }) {
  const modules = {}
  for (const v of variants) {
    try {
      modules[v.key] = await loadModules(v.dist)
    } catch (error) {
      log(`  pipeline ${v.key}: cannot load its modules: ${error.message}`)
    }
  }
  const out = { chunking, totalMb, cases: {} }
  for (const c of PIPELINE_CASES) {
    const block = buildBlock(c.frameBytes, 8 * 1024 * 1024)
    const frameTotal = c.frameBytes + HEADER_BYTES
    // Whole frames only
    const totalBytes = Math.round((totalMb * c.share * 1_000_000) / frameTotal) * frameTotal
    const chunkBytes = chunking === 'frame' ? frameTotal : chunking
    const runs = { copy: [] }
    const measure = async (key, fn) => {
      const t0 = nowMs()
      const r = await fn(source(block, totalBytes, chunkBytes))
      runs[key] ??= []
      runs[key].push(totalBytes / 1e6 / ((nowMs() - t0) / 1000))
      return r
    }
    // Warm-up: JIT.
    for (const m of Object.values(modules))
      await sseRoute(source(block, frameTotal * 500, chunkBytes), m)
    await copyChunks(source(block, frameTotal * 500, chunkBytes))
    for (let rep = 0; rep < reps; rep++) {
      await measure('copy', copyChunks)
      for (const [key, m] of Object.entries(modules)) {
        await measure(`sse:${key}`, (input) => sseRoute(input, m))
      }
    }
    const first = modules[variants[0].key]
    if (first && c.info) {
      for (const [name, stage] of Object.entries(INFO_STAGES)) {
        for (let rep = 0; rep < reps; rep++) await measure(name, (input) => stage(input, first))
      }
    }
    const rates = Object.fromEntries(
      Object.entries(runs).map(([key, r]) => [
        key,
        { mbPerS: median(r), reps: r.map((x) => round(x, 0)) },
      ]),
    )
    const copy = rates.copy.mbPerS
    const sse = Object.fromEntries(
      Object.keys(modules).map((key) => {
        const mbPerS = rates[`sse:${key}`]?.mbPerS ?? null
        return [key, { mbPerS, ratio: copy && mbPerS ? mbPerS / copy : null }]
      }),
    )
    out.cases[c.name] = { ...c, chunkBytes, totalBytes, copyMbPerS: copy, sse, stages: rates }
    log(
      `  pipeline ${c.title}: copy ${round(copy, 0)} MB/s; ` +
        Object.entries(sse)
          .map(
            ([key, s]) =>
              `demux → lines → SSE (${key}) ${round(s.mbPerS, 0)} MB/s = ${round(s.ratio, 2)}×`,
          )
          .join('; '),
    )
  }
  return out
}
