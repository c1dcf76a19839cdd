/**
 * @module Container calls on the engine that several routes share.
 */
import { ProblemError } from '../errors.ts'
import type { EngineClient } from './client.ts'
import { isZeroTime } from './time.ts'
import { EngineContainerInspect, EngineContainerList, parseEngine } from './types.ts'

/** `ref` has been validated against Docker's name alphabet; encoding keeps it one path segment. */
export const containerPath = (ref: string, suffix = '') =>
  `/containers/${encodeURIComponent(ref)}${suffix}`

export async function inspectContainer(
  engine: EngineClient,
  ref: string,
  signal?: AbortSignal,
): Promise<EngineContainerInspect> {
  const raw = await engine.json('GET', containerPath(ref, '/json'), { signal })
  return parseEngine(EngineContainerInspect, raw, 'container')
}

/** The container, or undefined when the engine has none by that reference (removed meanwhile). */
export async function inspectContainerIfAny(
  engine: EngineClient,
  ref: string,
  signal?: AbortSignal,
): Promise<EngineContainerInspect | undefined> {
  try {
    return await inspectContainer(engine, ref, signal)
  } catch (error) {
    if (isNotFound(error)) return undefined
    throw error
  }
}

/** The engine's 404: no such container (image, …), or none any more. */
export function isNotFound(error: unknown): boolean {
  return error instanceof ProblemError && error.status === 404
}

/** Whether the container ever ran: until it does, its `StartedAt` is the zero time. */
export function everStarted(state: EngineContainerInspect['State']): boolean {
  return !isZeroTime(state.StartedAt)
}

export interface ListFilters {
  all?: boolean | undefined
  label?: readonly string[]
  status?: string | undefined
  name?: string | undefined
  limit?: number | undefined
}

/**
 * Lists, then inspects each (a list entry lacks start time and exit code), a few at a time. With
 * `visible`, only the entries it keeps (by their labels) count towards `limit` and are inspected.
 */
export async function listContainers(
  engine: EngineClient,
  filters: ListFilters,
  signal?: AbortSignal,
  visible?: (labels: Readonly<Record<string, string>>) => boolean,
): Promise<EngineContainerInspect[]> {
  const engineFilters: Record<string, string[]> = {}
  if (filters.label?.length) engineFilters.label = [...filters.label]
  if (filters.status) engineFilters.status = [filters.status]
  if (filters.name) engineFilters.name = [filters.name]
  const list = parseEngine(
    EngineContainerList,
    await engine.json('GET', '/containers/json', {
      signal,
      query: {
        // A status filter implies looking at stopped containers too, as the docker CLI does;
        // a limit too (the engine's own `limit` does), which is applied here when `visible` is.
        all:
          filters.all || filters.status !== undefined || (visible && filters.limit) ? 1 : undefined,
        limit: visible ? undefined : filters.limit,
        filters: JSON.stringify(engineFilters),
      },
    }),
    'container list',
  )
  const kept = visible ? list.filter((entry) => visible(entry.Labels ?? {})) : list
  const page = visible && filters.limit !== undefined ? kept.slice(0, filters.limit) : kept
  // One removed between the list and the inspect is simply gone.
  const inspected = await mapConcurrently(page, 8, ({ Id }) =>
    inspectContainerIfAny(engine, Id, signal),
  )
  return inspected.filter((c): c is EngineContainerInspect => c !== undefined)
}

/** Runs `fn` over `items`, at most `limit` at a time: the engine serves one client fairly. */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
