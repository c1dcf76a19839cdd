/**
 * @module The Bun entry's stdout: request log, audit records and its own messages, as JSON lines
 * written in batches (see `LineBuffer`), asynchronously and boundedly (`QueuedOutput`), with
 * `node:fs`'s `write` on file descriptor 1. Bun-only.
 *
 * Not `process.stdout`: on Bun its first use builds Node's stream classes (`node:stream`,
 * `fs.WriteStream`), about 10 ms of CPU of a 100 ms cold start (bench/README.md, "Cold start on
 * Bun, an entry of its own"). Nor Bun's own `Bun.write(Bun.stdout, …)`, which blocks the whole
 * thread while a pipe's reader does not read, nor its `Bun.stdout.writer()`, whose `flush` may
 * settle with bytes still held (lines were lost at exit): `fs.write` settles once its bytes are
 * written, off the main thread. A reader that does not keep up costs dropped lines (counted,
 * and said), not memory or latency (test/bun/stdout.test.ts). What still waits when the process
 * exits is written synchronously then.
 */
import { write, writeSync } from 'node:fs'
import { LineBuffer, type StdoutLines } from '../observability/line-buffer.ts'
import { QueuedOutput } from '../observability/queued-output.ts'

const STDOUT = 1
const encoder = new TextEncoder()

export interface BunStdoutOptions {
  /** Bytes that may wait for stdout before lines are dropped; 16 MiB unless given. */
  maxQueuedBytes?: number
}

export function bunStdoutLines(options: BunStdoutOptions = {}): StdoutLines {
  const output = new QueuedOutput(writeSome, options)
  // At exit no asynchronous write completes any more: what waits is written at once, in order.
  let exiting = false
  const lines = new LineBuffer({
    write: (chunk) => (exiting ? writeAllSync(encoder.encode(chunk)) : output.write(chunk)),
  })
  process.on('exit', () => {
    exiting = true
    for (const bytes of output.takeQueued()) writeAllSync(bytes)
    lines.flush()
  })
  return {
    line: (text) => lines.line(text),
    async drain() {
      lines.flush()
      await output.drained()
    },
  }
}

/** Writes some of `bytes` to stdout; answers how many. */
function writeSome(bytes: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) =>
    write(STDOUT, bytes, 0, bytes.length, null, (error, written) =>
      error ? reject(error) : resolve(written),
    ),
  )
}

function writeAllSync(bytes: Uint8Array): void {
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(STDOUT, bytes, at)
  } catch {
    // The reader went away: nothing more can be said.
  }
}
