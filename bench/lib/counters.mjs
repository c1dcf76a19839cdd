/**
 * Counters of what a log read delivered, chunk by chunk as the socket hands them over: frames of
 * the engine's multiplexed stream, and `event: stdout` messages of the gateway's SSE; and the CPU
 * each side spent on it. Shared by the logs (3a) and service-logs (3e) phases, which count the
 * same two streams.
 */
import { cpuMs } from './util.mjs'

/** Counts frames in a multiplexed stream (each frame here is one line: lines are < 16 KB). */
export function frameCounter() {
  let skip = 0 // payload bytes still to skip
  const header = Buffer.alloc(8)
  let headerHave = 0
  return (chunk) => {
    let frames = 0
    let i = 0
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i)
        skip -= n
        i += n
        continue
      }
      const n = Math.min(8 - headerHave, chunk.length - i)
      chunk.copy(header, headerHave, i, i + n)
      headerHave += n
      i += n
      if (headerHave === 8) {
        headerHave = 0
        skip = header.readUInt32BE(4)
        frames += 1
      }
    }
    return frames
  }
}

/** Counts `event: stdout` lines in an SSE stream, across chunk boundaries. */
export function sseLineCounter() {
  const needle = Buffer.from('\nevent: stdout\n')
  const count = (buf) => {
    let n = 0
    for (let at = buf.indexOf(needle); at !== -1; at = buf.indexOf(needle, at + 1)) n += 1
    return n
  }
  // The last bytes read before this chunk: too short to hold the needle themselves. Taken
  // across chunks, so that a needle spread over three (one shorter than it) is counted too.
  let carry = Buffer.alloc(0)
  return (chunk) => {
    const edge = needle.length - 1
    const across = carry.length ? count(Buffer.concat([carry, chunk.subarray(0, edge)])) : 0
    const last = chunk.length >= edge ? chunk : Buffer.concat([carry, chunk])
    carry = Buffer.from(last.subarray(Math.max(0, last.length - edge)))
    return across + count(chunk)
  }
}

/** Runs a read and adds the CPU time dockerd and the gateway (`gatewayPid`) spent meanwhile. */
export async function withCpu(ctx, gatewayPid, read) {
  const e0 = ctx.enginePid ? cpuMs(ctx.enginePid) : null
  const g0 = gatewayPid ? cpuMs(gatewayPid) : null
  const r = await read()
  const e1 = ctx.enginePid ? cpuMs(ctx.enginePid) : null
  const g1 = gatewayPid ? cpuMs(gatewayPid) : null
  return {
    ...r,
    engineCpuMs: e0 === null || e1 === null ? null : e1 - e0,
    gatewayCpuMs: g0 === null || g1 === null ? null : g1 - g0,
  }
}

/** Microseconds of CPU per line, from milliseconds over a count of lines. */
export const perLine = (ms, lines) => (ms === null || !lines ? null : (ms * 1000) / lines)
