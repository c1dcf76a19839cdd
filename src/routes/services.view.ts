/**
 * @module Maps the engine's services, tasks and nodes onto the curated views.
 */
import type { z } from '@hono/zod-openapi'
import { type RedactionSettings, redactEnv, redactLabels } from '../domain/redaction.ts'
import { IMAGE_LABEL } from '../domain/services.ts'
import type { EngineNode, EngineService, EngineTask } from '../engine/services.ts'
import type { NodeSchema, ServiceSchema, TaskSchema } from './services.schemas.ts'

export function toService(
  service: EngineService,
  redaction: RedactionSettings,
): z.infer<typeof ServiceSchema> {
  const { Spec: spec } = service
  const container = spec.TaskTemplate.ContainerSpec
  const limits = spec.TaskTemplate.Resources?.Limits
  return {
    id: service.ID,
    name: spec.Name,
    // The reference it was created from; the id its tasks run otherwise
    image: spec.Labels?.[IMAGE_LABEL] ?? container?.Image ?? '',
    replicas: spec.Mode.Replicated ? (spec.Mode.Replicated.Replicas ?? 0) : null,
    createdAt: service.CreatedAt,
    updatedAt: service.UpdatedAt,
    labels: redactLabels(spec.Labels ?? {}, redaction.secretLabelPatterns),
    config: {
      cmd: container?.Args ?? null,
      entrypoint: container?.Command ?? null,
      env: redactEnv(container?.Env ?? [], redaction.exposeEnvKeys),
      workingDir: container?.Dir || null,
      tty: container?.TTY ?? false,
    },
    resources: {
      memory: limits?.MemoryBytes || null,
      cpus: limits?.NanoCPUs ? limits.NanoCPUs / 1e9 : null,
      pids: limits?.Pids || null,
    },
  }
}

/**
 * A task's `Err` is the engine's text (image names, runc's words, host paths): the caller gets
 * what failed in fixed words.
 */
function taskError(err: string | null | undefined): string | null {
  if (!err) return null
  if (/non-zero exit/.test(err)) return 'The task’s command exited with a non-zero code'
  if (/No such image|image .* not found|pull access denied/i.test(err)) {
    return 'The image is not on the node the task was placed on'
  }
  if (/exec|executable|no such file|permission denied/i.test(err)) {
    return 'The task’s command could not be run: it is missing from the image or not executable'
  }
  return 'The task failed'
}

export function toTask(task: EngineTask): z.infer<typeof TaskSchema> {
  const container = task.Status.ContainerStatus
  return {
    id: task.ID,
    slot: task.Slot ?? null,
    node: task.NodeID || null,
    state: task.Status.State,
    desiredState: task.DesiredState,
    message: task.Status.Message || null,
    error: taskError(task.Status.Err),
    containerId: container?.ContainerID || null,
    exitCode:
      task.Status.State === 'complete' || task.Status.State === 'failed'
        ? (container?.ExitCode ?? null)
        : null,
    createdAt: task.CreatedAt,
    updatedAt: task.UpdatedAt,
  }
}

export function toNode(node: EngineNode): z.infer<typeof NodeSchema> {
  return {
    id: node.ID,
    hostname: node.Description?.Hostname ?? null,
    role: node.Spec.Role,
    availability: node.Spec.Availability,
    state: node.Status.State,
    address: node.Status.Addr ?? null,
    leader: node.ManagerStatus?.Leader ?? false,
    engineVersion: node.Description?.Engine?.EngineVersion ?? null,
  }
}
