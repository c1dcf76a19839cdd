/**
 * @module Ownership: who may see and act on which container.
 *
 * Every container created through the gateway carries `dockgate.owner`. A principal sees its own
 * and those its policy's `visibleLabels` select; an admin sees all. Anyone else's container
 * answers exactly as a missing one does, so its existence does not leak.
 */
import { CONTAINER_ID_LIKE, OWNER_LABEL } from '../domain/containers.ts'
import type { Guard } from '../domain/guard.ts'
import { labelMatches } from '../domain/policy.ts'
import { isAdmin, type Principal } from '../domain/principal.ts'
import type { EngineClient } from '../engine/client.ts'
import { inspectContainer } from '../engine/containers.ts'
import { type EngineContainerInspect, EngineContainerList, parseEngine } from '../engine/types.ts'
import { notFound } from '../errors.ts'
import type { ContainerModel } from '../model/containers.ts'

export function canSee(principal: Principal, labels: Readonly<Record<string, string>>): boolean {
  if (isAdmin(principal) || labels[OWNER_LABEL] === principal.id) return true
  const selectors = principal.policy.visibleLabels
  return selectors.length > 0 && selectors.every((selector) => labelMatches(labels, selector))
}

/**
 * Everything {@link canSee} reads of a principal, as one string: two principals with the same key
 * see the same containers, so an answer derived from what one may see is the other's too (the
 * container list's kept answers, `routes/containers.list-answers.ts`). Change it with `canSee`.
 */
export function viewerKey(principal: Principal): string {
  if (isAdmin(principal)) return '*'
  return JSON.stringify([principal.id, principal.policy.visibleLabels])
}

/** The engine's own words for a missing container: a hidden one must read the same. */
const noSuchContainer = (ref: string) => notFound(`No such container: ${ref}`)

/**
 * Inspects a container the caller may see; any other answers 404 like a missing one.
 *
 * A reference of 12 to 64 hex digits is an id or id prefix only, never a name (the engine would
 * take a name first, so a container named like another's short id would shadow it); anything
 * else is resolved by the engine. Only a container the caller may see is answered from the
 * read model: a hidden one costs the same engine call as a missing one, so neither answers
 * sooner and timing does not tell them apart.
 */
export async function accessContainer(
  engine: EngineClient,
  guard: Guard,
  ref: string,
  signal?: AbortSignal,
  model?: ContainerModel,
): Promise<EngineContainerInspect> {
  const { principal } = guard
  const memory = model?.ready ? model : undefined
  const idLike = CONTAINER_ID_LIKE.test(ref)
  const known = idLike ? memory?.byId(ref) : memory?.byName(ref)
  if (known && canSee(principal, known.Config.Labels ?? {})) return known
  if (!idLike) {
    const inspect = await inspectContainer(engine, ref, signal)
    if (!canSee(principal, inspect.Config.Labels ?? {})) {
      guard.deny('not-owner', ref, noSuchContainer(ref))
    }
    return inspect
  }
  const entry = await findById(engine, ref, signal)
  if (!entry) throw noSuchContainer(ref)
  if (!canSee(principal, entry.Labels ?? {})) guard.deny('not-owner', ref, noSuchContainer(ref))
  return memory?.byId(entry.Id) ?? (await inspectContainer(engine, entry.Id, signal))
}

/**
 * The one container whose id starts with `ref`, from the engine's list (which carries labels,
 * enough to decide visibility). The engine's `id` filter takes a unique id prefix and matches
 * nothing when the prefix is ambiguous (verified on 20.10); only ids that start with `ref` count.
 */
async function findById(engine: EngineClient, ref: string, signal: AbortSignal | undefined) {
  const list = parseEngine(
    EngineContainerList,
    await engine.json('GET', '/containers/json', {
      query: { all: 1, filters: JSON.stringify({ id: [ref] }) },
      signal,
    }),
    'container list',
  )
  const matches = list.filter((c) => c.Id.startsWith(ref))
  return matches.length === 1 ? matches[0] : undefined
}

/**
 * Engine list filters that keep a principal to its own containers, when that can be said to the
 * engine (own containers only); otherwise the caller filters with `canSee` after listing.
 */
export function ownerFilter(principal: Principal): string | undefined {
  if (isAdmin(principal) || principal.policy.visibleLabels.length > 0) return undefined
  if (principal.policy.mode === 'audit') return undefined
  return `${OWNER_LABEL}=${principal.id}`
}
