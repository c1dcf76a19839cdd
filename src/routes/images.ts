/**
 * @module `/v1/images`: list and inspect (read-only; pulling and building are not offered).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi'
import type { AppEnv } from '../context.ts'
import type { EngineClient } from '../engine/client.ts'
import { EngineImageInspect, EngineImageList, parseEngine } from '../engine/types.ts'
import {
  ENGINE_PROBLEMS,
  isoOrNull,
  NO_QUERY,
  problems,
  QueryBoolean,
  scoped,
  strictQuery,
  validationHook,
} from './common.ts'
import { ImageRef } from './containers.schemas.ts'

const ImageSummarySchema = z
  .object({
    id: z.string(),
    tags: z.array(z.string()),
    digests: z.array(z.string()),
    createdAt: z.string().openapi({ format: 'date-time' }),
    size: z.number().int(),
    labels: z.record(z.string(), z.string()),
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
      labels: z.record(z.string(), z.string()),
    }),
  })
  .openapi('ImageDetail')

const listRoute = createRoute({
  method: 'get',
  path: '/v1/images',
  operationId: 'listImages',
  tags: ['images'],
  summary: 'List images',
  description:
    'The images on the engine, with their tags and labels; `dangling` for untagged ones only.',
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
  description: 'URL-encode the reference: `library%2Fbusybox%3Alatest`.',
  ...scoped('images:read'),
  request: {
    query: NO_QUERY,
    params: z.object({
      ref: ImageRef.openapi({
        param: { name: 'ref', in: 'path' },
        description: 'Image reference or id, URL-encoded',
      }),
    }),
  },
  responses: {
    200: {
      description: 'The image',
      content: { 'application/json': { schema: ImageDetailSchema } },
    },
    ...problems(400, 404, ...ENGINE_PROBLEMS),
  },
})

export function imageRoutes(engine: EngineClient) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })

  app.openapi(listRoute, async (c) => {
    const { dangling } = c.req.valid('query')
    const raw = await engine.json('GET', '/images/json', {
      query: {
        filters:
          dangling === undefined ? undefined : JSON.stringify({ dangling: [String(dangling)] }),
      },
      signal: c.req.raw.signal,
    })
    const images = parseEngine(EngineImageList, raw, 'image list').map((image) => ({
      id: image.Id,
      tags: (image.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>'),
      digests: (image.RepoDigests ?? []).filter((digest) => digest !== '<none>@<none>'),
      createdAt: new Date(image.Created * 1000).toISOString(),
      size: image.Size,
      labels: image.Labels ?? {},
    }))
    return c.json({ images }, 200)
  })

  app.openapi(inspectRoute, async (c) => {
    const { ref } = c.req.valid('param')
    // The reference grammar has no '..' and no encoded bytes; the engine routes its slashes itself.
    const raw = await engine.json('GET', `/images/${ref}/json`, { signal: c.req.raw.signal })
    const image = parseEngine(EngineImageInspect, raw, 'image')
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
          labels: config?.Labels ?? {},
        },
      },
      200,
    )
  })

  return app
}
