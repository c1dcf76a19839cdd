/**
 * @module The Node entry's stdout: request log, audit records and its own messages, as JSON
 * lines written in batches (see `LineBuffer` for the flush rules).
 *
 * Every batch goes through `process.stdout`, as `console.log` did, so the order of lines is
 * kept whatever else writes there. To a pipe Node writes asynchronously: a reader that does not
 * keep up makes it queue. The queue is bounded: past `maxQueuedBytes` (16 MiB) batches are
 * dropped and counted, and the first batch written after it has room again starts with a
 * `warn` line saying how many lines were lost, so the gateway's memory never depends on its log
 * reader. To a file or a terminal the write blocks, once per batch instead of once per request.
 * Pending lines are written on `exit` too (a crash, `process.exit`), and `drain()` waits until
 * the last batch has left the process, for a graceful shutdown.
 */
import { LineBuffer, type StdoutLines } from '../observability/line-buffer.ts'
import {
  countLines,
  DEFAULT_MAX_QUEUED_BYTES,
  droppedLinesNotice,
} from '../observability/queued-output.ts'

/** The part of a Node `Writable` the lines are written to (`process.stdout`). */
export interface LineOutput {
  readonly writableLength: number
  write(chunk: string, callback?: (error?: Error | null) => void): boolean
  on(event: 'error', listener: (error: Error) => void): unknown
}

export interface StdoutLinesOptions {
  /** Default `process.stdout`. */
  output?: LineOutput
  /** Bytes the output may hold queued before batches are dropped; 16 MiB unless given. */
  maxQueuedBytes?: number
}

export function stdoutLines(options: StdoutLinesOptions = {}): StdoutLines {
  const output = options.output ?? process.stdout
  const maxQueued = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES
  let dropped = 0
  const write = (chunk: string) => {
    if (output.writableLength >= maxQueued) {
      dropped += countLines(chunk)
      return
    }
    if (dropped > 0) {
      writeTo(output, droppedLinesNotice(dropped))
      dropped = 0
    }
    writeTo(output, chunk)
  }
  const lines = new LineBuffer({ write })
  // An unreadable stdout (EPIPE when the reader went away) must not crash the gateway; console
  // ignores these errors in the same way.
  output.on('error', ignore)
  process.on('exit', () => lines.flush())
  return {
    line: (text) => lines.line(text),
    drain() {
      lines.flush()
      // The callback runs once everything written before it has been handed to the OS (or
      // when stdout failed: there is nothing more to wait for then either).
      return new Promise((resolve) => output.write('', () => resolve()))
    },
  }
}

function writeTo(output: LineOutput, chunk: string): void {
  try {
    output.write(chunk)
  } catch {
    // A synchronous write (file, terminal) that failed: the lines are lost, the gateway goes on.
  }
}

function ignore(): void {}
