/**
 * @module Ownership: who may see and act on which container.
 *
 * Every container created through the gateway carries `dockgate.owner`. A principal sees its own
 * and those its policy's `visibleLabels` select; an admin sees all. Anyone else's container
 * answers exactly as a missing one does, so its existence does not leak.
 */
import { isAdmin, type Principal } from '../auth/principal.ts'
import type { EngineClient } from '../engine/client.ts'
import { inspectContainer } from '../engine/containers.ts'
import type { EngineContainerInspect } from '../engine/types.ts'
import { notFound } from '../errors.ts'
import type { ContainerModel } from '../model/containers.ts'
import { OWNER_LABEL } from '../routes/containers.schemas.ts'
import type { Guard } from './guard.ts'
import { labelMatches } from './policy.ts'

export function canSee(principal: Principal, labels: Readonly<Record<string, string>>): boolean {
  if (isAdmin(principal) || labels[OWNER_LABEL] === principal.id) return true
  const selectors = principal.policy.visibleLabels
  return selectors.length > 0 && selectors.every((selector) => labelMatches(labels, selector))
}

/** The engine's own words for a missing container: a hidden one must read the same. */
export const noSuchContainer = (ref: string) => notFound(`No such container: ${ref}`)

/**
 * Inspects a container the caller may see (from the read model when it knows the container);
 * any other answers 404 like a missing one.
 */
export async function accessContainer(
  engine: EngineClient,
  guard: Guard,
  ref: string,
  signal?: AbortSignal,
  model?: ContainerModel,
): Promise<EngineContainerInspect> {
  const known = model?.ready ? model.get(ref) : undefined
  const inspect = known ?? (await inspectContainer(engine, ref, signal))
  if (!canSee(guard.principal, inspect.Config.Labels ?? {})) {
    guard.deny('not-owner', ref, noSuchContainer(ref))
  }
  return inspect
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
