/**
 * Waiting for a gateway a test started as a process: it says it is ready with a `"listening"`
 * line in its own log.
 */
import { type ChildProcess, spawn } from 'node:child_process'

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

/**
 * Starts `file args` with `env` (and nothing else of this process's environment), in `cwd` (this
 * process's own unless given), gathers what it writes to stdout and stderr, and resolves once it
 * listens (`untilListening`).
 */
export async function spawnListening(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs?: number,
  cwd?: string,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(file, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const gathered = () => output
  try {
    await untilListening(child, gathered, timeoutMs)
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }
  return { child, output: gathered }
}
