/**
 * @module The `revoked` event's data as the OpenAPI document states it, for the streams' routes.
 * Its own module: the revocation itself (`./open-streams.ts`) runs from the start, the routes'
 * schemas are built with their groups.
 */
import { z } from '@hono/zod-openapi'

/** The data of `event: revoked`, the last event of a stream whose credential was revoked. */
export const RevokedDataSchema = z
  .object({
    reason: z.enum(['revoked', 'changed']).openapi({
      description:
        '`revoked`: the credential that opened the stream is no longer accepted. `changed`: its scopes or policy changed; opening the stream again continues under the new ones',
    }),
    detail: z.string(),
  })
  .openapi('StreamRevokedData')
