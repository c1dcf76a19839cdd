/**
 * @module Positions for read-your-writes across instances.
 *
 * A position is an engine time in nanoseconds (decimal digits, like an event's `timeNano`). A
 * change made through the gateway answers one no earlier than any engine event the change
 * caused (`writePosition`). An instance answers a read from its read model only once the model
 * has taken in every engine event up to the position the read asks for (the caller's
 * `Dockgate-Position`, and the newest one any instance recorded through {@link WritePositions});
 * until it can prove that, it asks the engine.
 *
 * `WritePositions` is the port through which instances learn of each other's writes: in memory
 * for instances of one process; `positions-redis.ts` for every instance. One instance needs none:
 * its own writes are in its model before it answers.
 */

export interface WritePositions {
  /** Records a write's position; resolves once every instance can read it. */
  record(position: bigint): Promise<void>
  /** The newest position recorded by any instance; undefined when none was. */
  latest(): Promise<bigint | undefined>
}

/** Positions shared by the instances of one process. */
export function memoryWritePositions(): WritePositions {
  let newest: bigint | undefined
  return {
    async record(position) {
      if (newest === undefined || position > newest) newest = position
    },
    latest: async () => newest,
  }
}

/** The digits of a position; undefined for anything else. */
export function parsePosition(value: string | undefined | null): bigint | undefined {
  return value && /^\d{1,20}$/.test(value) ? BigInt(value) : undefined
}

/** The later of two positions. */
export function laterPosition(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return a > b ? a : b
}

/**
 * The position of a write just answered: the gateway's clock, which is never earlier than the
 * engine events the write caused as long as the engine and the instances share a clock (one
 * host, or NTP); never earlier than the newest event this instance received either.
 */
export function writePosition(newestEvent: bigint | undefined): bigint {
  const now = BigInt(Date.now()) * 1_000_000n + 999_999n
  return newestEvent !== undefined && newestEvent > now ? newestEvent : now
}
