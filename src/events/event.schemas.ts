/**
 * @module An engine event's line as the gateway reads it, as a schema: what `isRawEngineEvent`
 * (`./event.ts`) checks by hand and test/events/event.test.ts proves equal to it. Its own module:
 * a start needs the type, not the schema built.
 */
import { z } from 'zod'
import { EVENT_TYPES } from './event.ts'

/** Loose: the engine adds fields between versions; only these are read. */
export const RawEngineEventSchema = z.looseObject({
  Type: z.enum(EVENT_TYPES),
  Action: z.string().min(1).max(65_536),
  Actor: z.looseObject({
    ID: z.string().max(1024),
    Attributes: z.record(z.string(), z.unknown()).nullish(),
  }),
  timeNano: z.number(),
})
