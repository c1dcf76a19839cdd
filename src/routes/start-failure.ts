/**
 * @module What the caller hears when its container could not start.
 *
 * The engine keeps the reason in `State.Error` (and in wait's `Error.Message`): runc's words,
 * with host paths and shim internals. The caller gets fixed words instead, chosen by the exit
 * code the engine set (moby `daemon/start.go`, `translateContainerdStartErr`): 127 when the
 * command was not found, 126 when it could not be executed, 128 for anything else. Verified on
 * 20.10: start answers 400, restart 500, both with runc's text; wait answers 200, exit code 127.
 */

import type { EngineContainerInspect } from '../engine/types.ts'
import { ProblemError } from '../errors.ts'

export const COMMAND_COULD_NOT_RUN =
  'The container could not start because its command could not run'
export const COULD_NOT_START = 'The container could not start'

/** The fixed reason for a start failure that ended with this exit code. */
export function startFailureText(exitCode: number): string {
  return exitCode === 126 || exitCode === 127 ? COMMAND_COULD_NOT_RUN : COULD_NOT_START
}

/**
 * A 409 when the container is not running because its last start failed (the engine recorded
 * why), else undefined: then the engine's own failure is the answer.
 */
export function startFailure(state: EngineContainerInspect['State']): ProblemError | undefined {
  if (state.Running || state.Error === '') return undefined
  return new ProblemError(409, 'conflict', { detail: startFailureText(state.ExitCode) })
}
