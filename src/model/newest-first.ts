/**
 * @module The read model's containers by id, and newest first as the engine lists them.
 *
 * A list is answered on every poll, a container changes far less often, and its creation time
 * never: so each container takes its place in the order once, when it is put, and a list walks
 * that order instead of sorting the matches per request (which turned both times into BigInt
 * nanoseconds per comparison: 10–16 % of a list's CPU).
 */
import { toEngineTime } from '../engine/time.ts'
import type { EngineContainerInspect } from '../engine/types.ts'

interface Placed {
  container: EngineContainerInspect
  /** The creation time in two exact parts: nanoseconds since the epoch exceed 2^53. */
  readonly seconds: number
  readonly nanos: number
}

export class NewestFirst {
  readonly #byId = new Map<string, Placed>()
  /** Newest first; equal times in the order they were first put, as a stable sort left them. */
  readonly #placed: Placed[] = []
  /** The same containers in the same order, for the walk a list makes. */
  readonly #containers: EngineContainerInspect[] = []
  #version = 0

  get size(): number {
    return this.#byId.size
  }

  /**
   * Changes whenever a container is put or removed: what was derived from the containers at one
   * version (a list's answer) holds until it changes.
   */
  get version(): number {
    return this.#version
  }

  /** Every container, newest first. The array changes with the set: walk it, do not keep it. */
  get newestFirst(): readonly EngineContainerInspect[] {
    return this.#containers
  }

  get(id: string): EngineContainerInspect | undefined {
    return this.#byId.get(id)?.container
  }

  ids(): IterableIterator<string> {
    return this.#byId.keys()
  }

  /** Adds a container, or replaces the one with its id (in its place: the creation time stays). */
  set(container: EngineContainerInspect): void {
    this.#version += 1
    const known = this.#byId.get(container.Id)
    if (known?.container.Created === container.Created) {
      this.#containers[this.#indexOf(known)] = container
      known.container = container
      return
    }
    if (known) this.delete(container.Id)
    const placed = { container, ...creationTime(container.Created) }
    const at = this.#firstOlderThan(placed)
    this.#placed.splice(at, 0, placed)
    this.#containers.splice(at, 0, container)
    this.#byId.set(container.Id, placed)
  }

  delete(id: string): boolean {
    const placed = this.#byId.get(id)
    if (!placed) return false
    this.#version += 1
    const at = this.#indexOf(placed)
    this.#placed.splice(at, 1)
    this.#containers.splice(at, 1)
    this.#byId.delete(id)
    return true
  }

  /** Where a container is: the first of its creation time, then past those put before it. */
  #indexOf(placed: Placed): number {
    let at = this.#firstNotNewerThan(placed)
    while (this.#placed[at] !== placed) at += 1
    return at
  }

  #firstNotNewerThan(time: Placed): number {
    return this.#search((p) => compareTimes(p, time) <= 0)
  }

  #firstOlderThan(time: Placed): number {
    return this.#search((p) => compareTimes(p, time) < 0)
  }

  /** The first index whose entry satisfies `past`, which holds from some index to the end. */
  #search(past: (p: Placed) => boolean): number {
    let low = 0
    let high = this.#placed.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (past(this.#placed[middle] as Placed)) high = middle
      else low = middle + 1
    }
    return low
  }
}

function compareTimes(a: Pick<Placed, 'seconds' | 'nanos'>, b: Pick<Placed, 'seconds' | 'nanos'>) {
  return a.seconds - b.seconds || a.nanos - b.nanos
}

/** An unreadable time sorts as the oldest, as it did when the engine time defaulted to 0. */
function creationTime(created: string): { seconds: number; nanos: number } {
  const [seconds = '0', nanos = '0'] = (toEngineTime(created) ?? '0.0').split('.')
  return { seconds: Number(seconds), nanos: Number(nanos) }
}
