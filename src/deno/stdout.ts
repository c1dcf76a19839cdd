/**
 * @module The Deno entry's stdout: request log, audit records and its own messages, as JSON
 * lines written in batches (see `LineBuffer`), asynchronously and boundedly (`QueuedOutput`).
 *
 * `console.log` writes each line synchronously: a system call per request, and a gateway that
 * stops whenever its log reader does. Here a batch is handed to `Deno.stdout.write` without
 * waiting; a reader that does not keep up costs dropped lines (counted, and said), not memory
 * or latency. What still waits when the process exits is written synchronously then.
 */
import { LineBuffer, type StdoutLines } from '../observability/line-buffer.ts'
import { QueuedOutput } from '../observability/queued-output.ts'

export function denoStdoutLines(): StdoutLines {
  const output = new QueuedOutput((bytes) => Deno.stdout.write(bytes))
  const lines = new LineBuffer({ write: (chunk) => output.write(chunk) })
  globalThis.addEventListener('unload', () => {
    lines.flush()
    for (const bytes of output.takeQueued()) writeAllSync(bytes)
  })
  return {
    line: (text) => lines.line(text),
    async drain() {
      lines.flush()
      await output.drained()
    },
  }
}

function writeAllSync(bytes: Uint8Array): void {
  try {
    for (let at = 0; at < bytes.length; ) at += Deno.stdout.writeSync(bytes.subarray(at))
  } catch {
    // The reader went away: nothing more can be said.
  }
}
