/**
 * @module Maps the engine's container inspect answer onto the curated views.
 */
import type { z } from '@hono/zod-openapi'
import { type RedactionSettings, redactEnv, redactLabels } from '../domain/redaction.ts'
import type { EngineContainerInspect } from '../engine/types.ts'
import { isoOrNull } from './common.ts'
import type { ContainerDetailSchema, ContainerSummarySchema } from './containers.schemas.ts'

type Summary = z.infer<typeof ContainerSummarySchema>
type Detail = z.infer<typeof ContainerDetailSchema>

const nameOf = (inspect: EngineContainerInspect) => inspect.Name.replace(/^\//, '')

/** The engine keeps the last exit code after a restart; only a stopped container has one. */
function exitCodeOf(state: EngineContainerInspect['State']): number | null {
  return state.Status === 'exited' || state.Status === 'dead' ? state.ExitCode : null
}

/**
 * The engine's `State.Error` is runc's text (host paths, shim internals): the caller gets what
 * failed in its own terms.
 */
function startErrorInCallerTerms(error: string): string | null {
  if (!error) return null
  return /exec|executable|no such file|permission denied/i.test(error)
    ? "The container's command could not be run: it is missing from the image or not executable"
    : 'The container could not be started'
}

export function toSummary(inspect: EngineContainerInspect, redaction: RedactionSettings): Summary {
  return {
    id: inspect.Id,
    name: nameOf(inspect),
    image: inspect.Config.Image,
    state: inspect.State.Status,
    createdAt: inspect.Created,
    startedAt: isoOrNull(inspect.State.StartedAt),
    exitCode: exitCodeOf(inspect.State),
    labels: redactLabels(inspect.Config.Labels ?? {}, redaction.secretLabelPatterns),
  }
}

/**
 * A container's summary as JSON, kept per inspect answer and redaction patterns. The read model
 * replaces a container's answer whenever it changes, so one answer is one version of the
 * container, and a list from the model joins what it has instead of redacting every label
 * against every pattern and serialising every container per request. A summary depends on the
 * container and the settings alone, never on who asks (the route decides visibility before), so
 * no caller's view reaches another.
 */
const summaryJson = new WeakMap<
  EngineContainerInspect,
  { patterns: readonly string[]; json: string }
>()

function toSummaryJson(inspect: EngineContainerInspect, redaction: RedactionSettings): string {
  const cached = summaryJson.get(inspect)
  if (cached?.patterns === redaction.secretLabelPatterns) return cached.json
  const json = JSON.stringify(toSummary(inspect, redaction))
  summaryJson.set(inspect, { patterns: redaction.secretLabelPatterns, json })
  return json
}

/** `JSON.stringify({ containers: summaries })`, byte for byte, from the cached summaries. */
export function toListJson(
  containers: readonly EngineContainerInspect[],
  redaction: RedactionSettings,
): string {
  return `{"containers":[${containers.map((i) => toSummaryJson(i, redaction)).join(',')}]}`
}

export function toDetail(inspect: EngineContainerInspect, redaction: RedactionSettings): Detail {
  const { State: state, Config: config, HostConfig: host } = inspect
  return {
    id: inspect.Id,
    name: nameOf(inspect),
    image: config.Image,
    imageId: inspect.Image,
    createdAt: inspect.Created,
    restartCount: inspect.RestartCount ?? 0,
    state: {
      status: state.Status,
      running: state.Running,
      paused: state.Paused,
      restarting: state.Restarting,
      oomKilled: state.OOMKilled,
      exitCode: exitCodeOf(state),
      error: startErrorInCallerTerms(state.Error),
      startedAt: isoOrNull(state.StartedAt),
      finishedAt: isoOrNull(state.FinishedAt),
    },
    config: {
      cmd: config.Cmd ?? null,
      entrypoint: config.Entrypoint ?? null,
      env: redactEnv(config.Env ?? [], redaction.exposeEnvKeys),
      labels: redactLabels(config.Labels ?? {}, redaction.secretLabelPatterns),
      workingDir: config.WorkingDir || null,
      tty: config.Tty,
    },
    resources: {
      memory: host.Memory || null,
      memorySwap: host.MemorySwap || null,
      cpus: host.NanoCpus ? host.NanoCpus / 1e9 : null,
      pids: host.PidsLimit && host.PidsLimit > 0 ? host.PidsLimit : null,
    },
  }
}
