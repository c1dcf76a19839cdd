/**
 * @module Swarm calls on the engine: services, their tasks, and nodes (API 1.41, a manager only:
 * anywhere else the engine answers 503, which the client turns into a 409 `not-a-swarm-manager`).
 */
import { z } from 'zod'
import { ProblemError } from '../errors.ts'
import type { EngineClient } from './client.ts'
import { parseEngine } from './types.ts'

const Labels = z.record(z.string(), z.string()).nullish()
const StringList = z.array(z.string()).nullish()

export const EngineServiceSpec = z.looseObject({
  Name: z.string(),
  Labels,
  TaskTemplate: z.looseObject({
    ContainerSpec: z
      .looseObject({
        Image: z.string(),
        Command: StringList,
        Args: StringList,
        Env: StringList,
        Labels,
        Dir: z.string().nullish(),
        TTY: z.boolean().nullish(),
      })
      .nullish(),
    Resources: z
      .looseObject({
        Limits: z
          .looseObject({
            NanoCPUs: z.number().nullish(),
            MemoryBytes: z.number().nullish(),
            Pids: z.number().nullish(),
          })
          .nullish(),
      })
      .nullish(),
  }),
  Mode: z.looseObject({
    Replicated: z.looseObject({ Replicas: z.number().nullish() }).nullish(),
    Global: z.looseObject({}).nullish(),
  }),
})

export const EngineService = z.looseObject({
  ID: z.string(),
  Version: z.looseObject({ Index: z.number() }),
  CreatedAt: z.string(),
  UpdatedAt: z.string(),
  Spec: EngineServiceSpec,
})
export type EngineService = z.infer<typeof EngineService>

export const EngineTask = z.looseObject({
  ID: z.string(),
  CreatedAt: z.string(),
  UpdatedAt: z.string(),
  ServiceID: z.string(),
  Slot: z.number().nullish(),
  NodeID: z.string().nullish(),
  DesiredState: z.string(),
  Status: z.looseObject({
    Timestamp: z.string().nullish(),
    State: z.string(),
    Message: z.string().nullish(),
    Err: z.string().nullish(),
    ContainerStatus: z
      .looseObject({ ContainerID: z.string().nullish(), ExitCode: z.number().nullish() })
      .nullish(),
  }),
})
export type EngineTask = z.infer<typeof EngineTask>

export const EngineNode = z.looseObject({
  ID: z.string(),
  CreatedAt: z.string(),
  UpdatedAt: z.string(),
  Spec: z.looseObject({ Role: z.string(), Availability: z.string() }),
  Description: z
    .looseObject({
      Hostname: z.string().nullish(),
      Engine: z.looseObject({ EngineVersion: z.string().nullish() }).nullish(),
    })
    .nullish(),
  Status: z.looseObject({ State: z.string(), Addr: z.string().nullish() }),
  ManagerStatus: z
    .looseObject({ Leader: z.boolean().nullish(), Reachability: z.string().nullish() })
    .nullish(),
})
export type EngineNode = z.infer<typeof EngineNode>

/** `ref` has been validated against the service name alphabet; encoding keeps it one segment. */
export const servicePath = (ref: string, suffix = '') =>
  `/services/${encodeURIComponent(ref)}${suffix}`

/** The engine's own words for a missing service, which a hidden one must read the same as. */
export const noSuchService = (ref: string) =>
  new ProblemError(404, 'not-found', { detail: `No such service: ${ref}` })

/** A service by id, id prefix or name; a 404 says only the reference the caller sent. */
export async function inspectService(
  engine: EngineClient,
  ref: string,
  signal?: AbortSignal,
): Promise<EngineService> {
  let raw: unknown
  try {
    raw = await engine.json('GET', servicePath(ref), { signal })
  } catch (error) {
    if (error instanceof ProblemError && error.status === 404) throw noSuchService(ref)
    throw error
  }
  return parseEngine(EngineService, raw, 'service')
}

/** Services with every label selector given (`key` or `key=value`). */
export async function listServices(
  engine: EngineClient,
  labels: readonly string[],
  signal?: AbortSignal,
): Promise<EngineService[]> {
  const filters = labels.length > 0 ? JSON.stringify({ label: labels }) : undefined
  const raw = await engine.json('GET', '/services', { query: { filters }, signal })
  return parseEngine(z.array(EngineService), raw, 'service list')
}

/** A service's tasks, the newest first. */
export async function listTasks(
  engine: EngineClient,
  serviceId: string,
  signal?: AbortSignal,
): Promise<EngineTask[]> {
  const filters = JSON.stringify({ service: [serviceId] })
  const raw = await engine.json('GET', '/tasks', { query: { filters }, signal })
  const tasks = parseEngine(z.array(EngineTask), raw, 'task list')
  // Another service whose name starts with this id would match the filter too.
  return tasks
    .filter((t) => t.ServiceID === serviceId)
    .sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt))
}

export async function listNodes(engine: EngineClient, signal?: AbortSignal): Promise<EngineNode[]> {
  return parseEngine(z.array(EngineNode), await engine.json('GET', '/nodes', { signal }), 'nodes')
}

/**
 * The replicas a replicated service asks for; 0 for a global one, whose tasks are one per node
 * (`ownedCount` in policy/services.ts counts those by the swarm's nodes).
 */
export const replicasOf = (service: EngineService): number =>
  service.Spec.Mode.Replicated?.Replicas ?? 0

/** Whether a service runs one task on every node rather than a number of replicas. */
export const isGlobal = (service: EngineService): boolean => service.Spec.Mode.Global != null
