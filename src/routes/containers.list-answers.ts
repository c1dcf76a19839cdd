/**
 * @module Container list answers from the read model, kept until the model changes.
 *
 * Dashboards poll the same list again and again, and a container changes far less often than
 * it is listed. An answer from the model depends on the model's containers (its `version`), the
 * redaction patterns, the list's filters and what the caller may see (`viewerKey`), and on
 * nothing else: it is kept under those and answered again, as the bytes it was sent as, until
 * one of them changes. Whatever changes a container in the model (a route's write, an event's
 * re-inspection, a rebuild) changes its version, and a config reload replaces the patterns; then
 * every kept answer is dropped at the next list.
 *
 * Measured (bench phase 2 and `bench/instructions.mjs --list`, bench/README.md "Changes and
 * their effect"): the walk over every container of the engine, the join of the summaries and the
 * UTF-8 encoding of the ~6.8 KB answer of 20 were what a list of 20 did beyond the small request.
 */
import type { Principal } from '../domain/principal.ts'
import type { RedactionSettings } from '../domain/redaction.ts'
import type { ContainerModel } from '../model/containers.ts'

export interface ListAnswer {
  /** The answer's body: `toListJson` of the list, as UTF-8. */
  readonly body: Uint8Array<ArrayBuffer>
  /** In audit mode: whether the list shows a container the caller may not see (an audit record). */
  readonly showsHidden: boolean
}

/** Answers kept at most per model version: distinct lists (and viewers) polled at once. */
const MAX_ANSWERS = 256
/** And their bytes at most (a list of 1,000 containers is ~340 KB). */
const MAX_BYTES = 8 * 1024 * 1024

interface Kept {
  readonly version: number
  readonly patterns: readonly string[]
  readonly answers: Map<string, ListAnswer>
  bytes: number
}

/** One per app: the answers kept for each engine's read model (per-engine routes share it). */
export class ListAnswers {
  readonly #byModel = new WeakMap<ContainerModel, Kept>()

  /**
   * The answer kept for `key` (the filters and the viewer, see `listKey`) at the model's current
   * version and these patterns, or the one `answer` makes now, kept for the next.
   */
  get(
    model: ContainerModel,
    redaction: RedactionSettings,
    key: string,
    answer: () => ListAnswer,
  ): ListAnswer {
    const kept = this.#current(model, redaction.secretLabelPatterns)
    const known = kept.answers.get(key)
    if (known) return known
    const made = answer()
    this.#keep(kept, key, made)
    return made
  }

  #current(model: ContainerModel, patterns: readonly string[]): Kept {
    const kept = this.#byModel.get(model)
    if (kept?.version === model.version && kept.patterns === patterns) return kept
    const fresh: Kept = { version: model.version, patterns, answers: new Map(), bytes: 0 }
    this.#byModel.set(model, fresh)
    return fresh
  }

  /** Keeps an answer; past the bounds, the oldest kept go first. */
  #keep(kept: Kept, key: string, answer: ListAnswer): void {
    const size = answer.body.byteLength + key.length
    if (size > MAX_BYTES) return
    for (const [oldKey, old] of kept.answers) {
      if (kept.answers.size < MAX_ANSWERS && kept.bytes + size <= MAX_BYTES) break
      kept.answers.delete(oldKey)
      kept.bytes -= old.body.byteLength + oldKey.length
    }
    kept.answers.set(key, answer)
    kept.bytes += size
  }
}

export interface ListKeyParts {
  /** `viewerKey` of the caller. */
  viewer: string
  auditMode: boolean
  filters: {
    all?: boolean | undefined
    label: readonly string[]
    status?: string | undefined
    name?: string | undefined
    limit?: number | undefined
  }
}

/** Every input of a list's answer besides the model and the patterns, unambiguously. */
export function listKey({ viewer, auditMode, filters }: ListKeyParts): string {
  const { all, label, status, name, limit } = filters
  return JSON.stringify([
    viewer,
    auditMode,
    all ?? null,
    label,
    status ?? null,
    name ?? null,
    limit ?? null,
  ])
}

/**
 * Each list's key (`listKey`), made once per query value and principal: `queryMemo` hands every
 * request that sends a query string the same frozen value, a configured credential's principal
 * is one object until a reload replaces it, and the key depends on nothing else (the viewer, the
 * audit mode and the owner filter are the principal's). A JWT's principal is new per request:
 * its key is made each time, as before. Making it (two `JSON.stringify` and the hash of a new
 * string for the lookup) was ~4k of the ~34k instructions a polled list of 20 did beyond the
 * small request (`bench/instructions.mjs --list --request-path`, bench/README.md).
 */
export class ListKeys {
  readonly #byQuery = new WeakMap<object, WeakMap<Principal, string>>()

  get(query: object, principal: Principal, make: () => string): string {
    let byPrincipal = this.#byQuery.get(query)
    if (!byPrincipal) {
      byPrincipal = new WeakMap()
      this.#byQuery.set(query, byPrincipal)
    }
    let key = byPrincipal.get(principal)
    if (key === undefined) {
      key = make()
      byPrincipal.set(principal, key)
    }
    return key
  }
}
