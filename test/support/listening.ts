/**
 * Waiting for a gateway a test started as a process: it says it is ready with a `"listening"`
 * line in its own log.
 */
import type { ChildProcess } from 'node:child_process'

/**
 * Resolves once `output()` holds the gateway's `"listening"` line; throws with what it wrote if
 * the process exits first or `timeoutMs` passes.
 */
export async function untilListening(
  child: ChildProcess,
  output: () => string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!output().includes('"listening"')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the gateway did not start:\n${output()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
