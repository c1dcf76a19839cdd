/**
 * @module Ownership and quota of Swarm services, exactly as for containers: a service carries
 * `dockgate.owner`, anyone else's answers 404 like a missing one, and every replica counts
 * towards `maxContainers` as a container does.
 */
import { OWNER_LABEL } from '../domain/containers.ts'
import type { Guard } from '../domain/guard.ts'
import type { EngineClient } from '../engine/client.ts'
import {
  type EngineService,
  inspectService,
  isGlobal,
  listNodes,
  listServices,
  noSuchService,
  replicasOf,
} from '../engine/services.ts'
import { EngineContainerList, EngineImageInspect, parseEngine } from '../engine/types.ts'
import { ProblemError } from '../errors.ts'
import { canSee } from './access.ts'

/** A service the caller may see; any other answers 404 exactly like a missing one. */
export async function accessService(
  engine: EngineClient,
  guard: Guard,
  ref: string,
  signal?: AbortSignal,
): Promise<EngineService> {
  const service = await inspectService(engine, ref, signal)
  if (!canSee(guard.principal, service.Spec.Labels ?? {})) {
    guard.deny('not-owner', ref, noSuchService(ref))
  }
  return service
}

/** The label Swarm puts on its task containers: those are counted as their service's replicas. */
const TASK_CONTAINER_LABEL = 'com.docker.swarm.service.id'

/**
 * What a principal holds towards `maxContainers`: its containers that are not a service's tasks,
 * plus every replica its services ask for (on whichever node they run), a global service's
 * being one on each node of the swarm (the gateway makes none; an operator's may carry a
 * client's owner label).
 *
 * A task's container is told by the label Swarm gives it, where only Swarm can have put it: a
 * request cannot set labels in Docker's namespaces (`refuseReservedLabels`), but an image can
 * carry that label, and every container made from it then carries it too. Those are counted like
 * any other, as is one whose image the engine no longer has. (The swarm's task records did not
 * do instead: test/routes/services.test.ts then counted the task containers of services removed
 * a moment before, which the engine was still taking down.)
 */
export async function ownedCount(
  engine: EngineClient,
  principalId: string,
  signal?: AbortSignal,
): Promise<number> {
  const owner = `${OWNER_LABEL}=${principalId}`
  const containers = parseEngine(
    EngineContainerList,
    await engine.json('GET', '/containers/json', {
      query: { all: 1, filters: JSON.stringify({ label: [owner] }) },
      signal,
    }),
    'container list',
  )
  const labelledAsTasks = containers.filter((c) => c.Labels && TASK_CONTAINER_LABEL in c.Labels)
  const fromImages = await imagesLabelledAsTasks(engine, labelledAsTasks, signal)
  const own =
    containers.length -
    labelledAsTasks.filter((c) => c.ImageID && !fromImages.has(c.ImageID)).length
  const services = await listServices(engine, [owner], signal).catch((error: unknown) => {
    // An engine outside a swarm runs no services: containers alone count.
    if (error instanceof ProblemError && error.code === 'not-a-swarm-manager') return []
    throw error
  })
  const perNode = services.some(isGlobal) ? (await listNodes(engine, signal)).length : 0
  return own + services.reduce((sum, s) => sum + (isGlobal(s) ? perNode : replicasOf(s)), 0)
}

/**
 * The images, among these containers', that carry the task label themselves. An image the engine
 * no longer has (removed by force under its containers) cannot vouch for them: it is among these.
 */
async function imagesLabelledAsTasks(
  engine: EngineClient,
  containers: readonly { ImageID?: string | null }[],
  signal?: AbortSignal,
): Promise<Set<string>> {
  const images = new Set(containers.flatMap((c) => (c.ImageID ? [c.ImageID] : [])))
  const labelled = new Set<string>()
  for (const id of images) {
    const raw = await engine
      .json('GET', `/images/${encodeURIComponent(id)}/json`, { signal })
      .catch((error: unknown) => {
        if (error instanceof ProblemError && error.status === 404) return undefined
        throw error
      })
    const labels =
      raw === undefined ? undefined : parseEngine(EngineImageInspect, raw, 'image').Config?.Labels
    if (raw === undefined || (labels && TASK_CONTAINER_LABEL in labels)) labelled.add(id)
  }
  return labelled
}

/** Refuses a change that would take the principal beyond its quota (admins have none). */
export function checkReplicaQuota(guard: Guard, owned: number, adding: number): void {
  const max = guard.principal.policy.maxContainers
  if (adding > 0 && owned + adding > max) {
    guard.deny(
      'max-containers',
      null,
      new ProblemError(403, 'forbidden', {
        detail: `This client holds ${owned} containers and replicas, ${adding} more would exceed its maximum of ${max}`,
      }),
    )
  }
}
