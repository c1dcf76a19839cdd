/**
 * @module `/v1/images`: list and inspect (pulls and removals: images.write.ts; building is not offered).
 */

import { createRoute, z } from '@hono/zod-openapi'
import { globMatches } from '../domain/policy.ts'
import { isAdmin, type Principal } from '../domain/principal.ts'
import { type RedactionSettings, redactLabels } from '../domain/redaction.ts'
import {
  EngineImageInspect,
  EngineImageList,
  type EngineImageListItem,
  parseEngine,
} from '../engine/types.ts'
import { notFound, ProblemError } from '../errors.ts'
import { engineScope } from '../http/engines.ts'
import {
  ENGINE_PROBLEMS,
  isoOrNull,
  problems,
  QueryBoolean,
  router,
  scoped,
  strictQuery,
} from './common.ts'
import { ImageRefParams } from './containers.schemas.ts'

const ImageLabels = z.record(z.string(), z.string().nullable()).openapi({
  description: 'Values of secret-looking keys (the secretLabelPatterns setting) are null',
})

const ImageSummarySchema = z
  .object({
    id: z.string(),
    tags: z.array(z.string()),
    digests: z.array(z.string()),
    createdAt: z.string().openapi({ format: 'date-time' }),
    size: z.number().int(),
    labels: ImageLabels,
  })
  .openapi('ImageSummary')

const ImageDetailSchema = z
  .object({
    id: z.string(),
    tags: z.array(z.string()),
    digests: z.array(z.string()),
    createdAt: z.string().nullable().openapi({ format: 'date-time' }),
    size: z.number().int(),
    architecture: z.string().nullable(),
    os: z.string().nullable(),
    config: z.object({
      cmd: z.array(z.string()).nullable(),
      entrypoint: z.array(z.string()).nullable(),
      envKeys: z
        .array(z.string())
        .openapi({ description: 'Names only: image env values can hold secrets' }),
      workingDir: z.string().nullable(),
      user: z.string().nullable(),
      labels: ImageLabels,
    }),
  })
  .openapi('ImageDetail')

const listRoute = createRoute({
  method: 'get',
  path: '/v1/images',
  operationId: 'listImages',
  tags: ['images'],
  summary: 'List images',
  description: "Admins see every image; anyone else those its policy's `images` patterns allow.",
  ...scoped('images:read'),
  request: {
    query: strictQuery({
      dangling: QueryBoolean.optional().openapi({ description: 'Only untagged images' }),
    }),
  },
  responses: {
    200: {
      description: 'Images',
      content: {
        'application/json': {
          schema: z.object({ images: z.array(ImageSummarySchema) }).openapi('ImageList'),
        },
      },
    },
    ...problems(400, ...ENGINE_PROBLEMS),
  },
})

const inspectRoute = createRoute({
  method: 'get',
  path: '/v1/images/{ref}',
  operationId: 'getImage',
  tags: ['images'],
  summary: 'Inspect an image',
  description:
    'URL-encode the reference: `library%2Fbusybox%3Alatest`. An image the caller’s policy does not ' +
    'allow answers 404 like a missing one.',
  ...scoped('images:read', { noQuery: true }),
  request: {
    params: ImageRefParams,
  },
  responses: {
    200: {
      description: 'The image',
      content: { 'application/json': { schema: ImageDetailSchema } },
    },
    ...problems(400, 404, ...ENGINE_PROBLEMS),
  },
})

export function imageRoutes(redaction: RedactionSettings) {
  const app = router()

  app.openapi(listRoute, async (c) => {
    const { dangling } = c.req.valid('query')
    const raw = await engineScope(c).client.json('GET', '/images/json', {
      query: {
        filters:
          dangling === undefined ? undefined : JSON.stringify({ dangling: [String(dangling)] }),
      },
      signal: c.req.raw.signal,
    })
    const all = parseEngine(EngineImageList, raw, 'image list')
    const guard = c.get('guard')
    const allowed = all.filter((image) => mayUse(guard.principal, image))
    if (allowed.length < all.length) {
      if (!guard.auditMode)
        return c.json({ images: allowed.map((i) => summary(i, redaction)) }, 200)
      guard.record({
        outcome: 'allowed',
        decision: 'would_deny',
        reason: 'image-not-allowed',
        target: null,
        status: null,
      })
    }
    return c.json({ images: all.map((i) => summary(i, redaction)) }, 200)
  })

  app.openapi(inspectRoute, async (c) => {
    const { ref } = c.req.valid('param')
    // The gateway's own words for a missing image, so that a disallowed one reads the same.
    const missing = () => notFound(`No such image: ${ref}`)
    // The reference grammar has no '..' and no encoded bytes; the engine routes its slashes itself.
    const raw = await engineScope(c)
      .client.json('GET', `/images/${ref}/json`, { signal: c.req.raw.signal })
      .catch((error: unknown) => {
        throw error instanceof ProblemError && error.status === 404 ? missing() : error
      })
    const image = parseEngine(EngineImageInspect, raw, 'image')
    if (!mayUse(c.get('principal'), image)) c.get('guard').deny('image-not-allowed', ref, missing())
    const config = image.Config
    return c.json(
      {
        id: image.Id,
        tags: image.RepoTags ?? [],
        digests: image.RepoDigests ?? [],
        createdAt: isoOrNull(image.Created),
        size: image.Size,
        architecture: image.Architecture ?? null,
        os: image.Os ?? null,
        config: {
          cmd: config?.Cmd ?? null,
          entrypoint: config?.Entrypoint ?? null,
          envKeys: (config?.Env ?? []).map((entry) => entry.split('=', 1)[0]!),
          workingDir: config?.WorkingDir || null,
          user: config?.User || null,
          labels: redactLabels(config?.Labels ?? {}, redaction.secretLabelPatterns),
        },
      },
      200,
    )
  })

  return app
}

/**
 * Whether a principal's policy lets it use (and so see) an image: one of its tags or digests
 * matches one of the policy's `images` patterns, as a create's image must. Admins see all.
 */
function mayUse(
  principal: Principal,
  image: { RepoTags?: string[] | null; RepoDigests?: string[] | null },
): boolean {
  if (isAdmin(principal)) return true
  const names = [...(image.RepoTags ?? []), ...(image.RepoDigests ?? [])]
  return names.some((name) => principal.policy.images.some((pattern) => globMatches(pattern, name)))
}

function summary(image: EngineImageListItem, redaction: RedactionSettings) {
  return {
    id: image.Id,
    tags: (image.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>'),
    digests: (image.RepoDigests ?? []).filter((digest) => digest !== '<none>@<none>'),
    createdAt: new Date(image.Created * 1000).toISOString(),
    size: image.Size,
    labels: redactLabels(image.Labels ?? {}, redaction.secretLabelPatterns),
  }
}
