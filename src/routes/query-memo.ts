/**
 * @module A polled route's query, validated once per query string.
 *
 * Hono's query validator parses the URL's query, runs zod over it and adds an async layer on
 * every request: ~10 µs of CPU for a small request (bench/README.md, "Changes and their effect",
 * where `refuseQuery` replaced it for routes without a query). A dashboard polls the same list
 * with the same query string again and again, and what a query string validates to depends on
 * that string alone: the value is kept per string (a bounded number of them) and shared by the
 * requests that send it, so it is never changed. A query that fails is judged again each time,
 * with the problem Hono's validator gives (`validationHook`).
 */
import type { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { AppEnv } from '../http/context.ts'
import { validationHook } from './common.ts'

/** Distinct query strings kept: far more than a route's pollers send; past it, the oldest go. */
const QUERIES_KEPT = 256
/** Longer query strings are judged every time (a poller's are far shorter): ≤ 256 KiB kept. */
const LONGEST_KEPT = 1_024

/** The query of `c` as `schema` validates it (frozen: shared by every request that sends it). */
export function queryMemo<S extends z.ZodType>(
  schema: S,
): (c: Context<AppEnv>) => Readonly<z.output<S>> {
  const known = new Map<string, Readonly<z.output<S>>>()
  return (c) => {
    const url = c.req.url
    const at = url.indexOf('?')
    const search = at === -1 ? '' : url.slice(at + 1)
    const hit = known.get(search)
    if (hit !== undefined) return hit
    const value = honoQueryValue(c)
    const result = schema.safeParse(value)
    if (!result.success) {
      validationHook({ data: value, ...result, target: 'query' }, c)
      throw result.error // not reached: the hook throws the problem
    }
    const valid = deepFreeze(result.data)
    if (search.length > LONGEST_KEPT) return valid
    if (known.size >= QUERIES_KEPT) known.delete(known.keys().next().value as string)
    known.set(search, valid)
    return valid
  }
}

/** The value Hono's validator hands a query schema: each name's values, one alone as itself. */
function honoQueryValue(c: Context<AppEnv>): Record<string, string | string[]> {
  return Object.fromEntries(
    Object.entries(c.req.queries()).map(([key, values]) => [
      key,
      values.length === 1 ? (values[0] as string) : values,
    ]),
  )
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
