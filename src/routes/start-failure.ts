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

/** The answer to a start or restart of a container whose command could not run. */
export const COMMAND_COULD_NOT_RUN =
  "The container could not be started: its command could not be run (check the image's " +
  'command, cmd, entrypoint and workingDir)'
/** What wait says happened to such a container (as inspect's `state.error` says it). */
export const COMMAND_NOT_RUNNABLE =
  "The container's command could not be run: it is missing from the image or not executable"
/** Any other start failure. */
const COULD_NOT_START = 'The container could not be started'

const commandCouldNotRun = (exitCode: number) => exitCode === 126 || exitCode === 127

/** Why the container did not run, for wait's answer, by the exit code its start failure set. */
export function startFailureText(exitCode: number): string {
  return commandCouldNotRun(exitCode) ? COMMAND_NOT_RUNNABLE : COULD_NOT_START
}

/**
 * A 400 when the container is not running because its last start failed (the engine recorded
 * why), else undefined: then the engine's own failure is the answer. 400, as the engine answers
 * a start (a restart it answers 500) and a create with `?start=true` answers: what the caller
 * gave the container cannot run.
 */
export function startFailure(state: EngineContainerInspect['State']): ProblemError | undefined {
  if (state.Running || state.Error === '') return undefined
  const detail = commandCouldNotRun(state.ExitCode) ? COMMAND_COULD_NOT_RUN : COULD_NOT_START
  return new ProblemError(400, 'bad-request', { detail })
}
