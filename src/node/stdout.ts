/**
 * @module The Node entry's stdout: request log, audit records and its own messages, as JSON
 * lines written in batches (see `LineBuffer` for the flush rules).
 *
 * Every batch goes through `process.stdout`, as `console.log` did, so the order of lines is
 * kept whatever else writes there. To a pipe Node writes asynchronously (a slow reader makes
 * it queue, not block); to a file or a terminal the write blocks, now once per batch instead of
 * once per request. Pending lines are written on `exit` too (a crash, `process.exit`), and
 * `drain()` waits until the last batch has left the process, for a graceful shutdown.
 */
import { LineBuffer } from '../observability/line-buffer.ts'

export interface StdoutLines {
  line(text: string): void
  /** Writes what is pending and settles once stdout has taken it. */
  drain(): Promise<void>
}

export function stdoutLines(): StdoutLines {
  const lines = new LineBuffer({ write: writeStdout })
  // An unreadable stdout (EPIPE when the reader went away) must not crash the gateway; console
  // ignores these errors in the same way.
  process.stdout.on('error', ignore)
  process.on('exit', () => lines.flush())
  return {
    line: (text) => lines.line(text),
    drain() {
      lines.flush()
      // The callback runs once everything written before it has been handed to the OS (or
      // when stdout failed: there is nothing more to wait for then either).
      return new Promise((resolve) => process.stdout.write('', () => resolve()))
    },
  }
}

function writeStdout(chunk: string): void {
  try {
    process.stdout.write(chunk)
  } catch {
    // A synchronous write (file, terminal) that failed: the lines are lost, the gateway goes on.
  }
}

function ignore(): void {}
