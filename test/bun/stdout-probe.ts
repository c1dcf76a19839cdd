/**
 * Run by Bun (test/bun/stdout.test.ts): lines through the Bun entry's stdout (src/bun/stdout.ts).
 * `PROBE=order`: 2,000 lines, the last 10 left pending when the process exits. `PROBE=stalled`:
 * 64 KiB may wait; 20,000 lines are given while the reader reads nothing, then one more line.
 */
import { bunStdoutLines } from '../../src/bun/stdout.ts'

const line = (n: number) => JSON.stringify({ msg: `line ${n}`, padding: 'x'.repeat(200) })

if (process.env.PROBE === 'order') {
  const lines = bunStdoutLines()
  for (let n = 0; n < 1_990; n++) lines.line(line(n))
  await lines.drain()
  for (let n = 1_990; n < 2_000; n++) lines.line(line(n))
  // Pending, not drained: written by the exit handler.
  process.exit(0)
} else {
  const lines = bunStdoutLines({ maxQueuedBytes: 64 * 1024 })
  // Far more than a pipe's buffer and the bound, while nobody reads.
  for (let n = 0; n < 20_000; n++) {
    lines.line(line(n))
    if (n % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  // The test reads stdout again once it sees this; the queue then has room for one more line.
  console.error('all lines given')
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  lines.line(line(-1))
  await lines.drain()
  process.exit(0)
}
