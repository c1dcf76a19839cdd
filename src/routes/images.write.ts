/**
 * @module `POST /v1/images/pull` and `DELETE /v1/images/{ref}`: bringing images onto the host and
 * taking them off, under the principal's policy and the configured registries.
 *
 * A pull brings code onto the host: only from a registry the configuration names, only an image
 * the policy's `images` patterns allow (the matcher a create's image goes through), and with the
 * registry's credentials from the configuration, which go to the engine and nowhere else.
 */

import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { GatewaySettings } from '../config.ts'
import { parseImageRef, policyAllowsRef, pulledRef } from '../domain/images.ts'
import { globMatches } from '../domain/policy.ts'
import { isAdmin } from '../domain/principal.ts'
import { refusedAs } from '../engine/client.ts'
import { PullTracker, pullFailure, registryAuthHeader } from '../engine/pull.ts'
import { EngineImageInspect, parseEngine } from '../engine/types.ts'
import { notFound, ProblemError } from '../errors.ts'
import type { AppEnv } from '../http/context.ts'
import { engineScope, sentPath } from '../http/engines.ts'
import type { ErrorLogger } from '../http/problems.ts'
import { type StreamDependencies, sseResponse, sseSettings } from '../http/sse.ts'
import { NdjsonStream } from '../streams/ndjson.ts'
import { ENGINE_PROBLEMS, ProblemSchema, problems, router, scoped } from './common.ts'
import { ImageRef, ImageRefParams } from './containers.schemas.ts'

/** Progress events at most this often: a few a second, however fast the engine reports. */
const PROGRESS_INTERVAL_MS = 250
/** A pull's records are short; a line this long is not the engine's. */
const MAX_RECORD_BYTES = 64 * 1024

/** A name to pull: a reference, never an image id (the engine cannot pull by id). */
const PullRef = ImageRef.refine((ref) => !/^(?:sha256:)?[a-f0-9]{64}$/.test(ref), {
  message: 'an image reference (name[:tag][@digest]), not an image id',
}).openapi({ example: '127.0.0.1:5000/team/app:1.2' })

const PullBody = z.strictObject({ ref: PullRef }).openapi('PullImageRequest')

const PullResultSchema = z
  .object({
    ref: z
      .string()
      .openapi({ description: 'What was pulled (`:latest` added when no tag was given)' }),
    id: z.string().openapi({ example: 'sha256:…' }),
    digest: z
      .string()
      .nullable()
      .openapi({ description: 'The manifest digest the registry served' }),
    upToDate: z.boolean().openapi({ description: 'The engine had the image already' }),
  })
  .openapi('PullResult')

const LayerProgressSchema = z.object({
  id: z.string(),
  status: z.string().openapi({
    description:
      'The engine’s word: `Waiting`, `Downloading`, `Extracting`, `Pull complete`, `Already exists`…',
  }),
  current: z.number().int().nullable(),
  total: z.number().int().nullable(),
  done: z.boolean(),
})

const PullProgressSchema = z
  .object({
    layers: z.array(LayerProgressSchema),
    overall: z.object({
      layers: z.number().int(),
      layersDone: z.number().int(),
      current: z
        .number()
        .int()
        .openapi({ description: 'Bytes downloaded of the layers whose size is known' }),
      total: z.number().int().openapi({ description: 'Sum of the sizes known so far' }),
    }),
  })
  .openapi('PullProgress')

const PullStreamEvent = z
  .union([
    z.object({ event: z.literal('progress'), data: PullProgressSchema }),
    z.object({ event: z.literal('end'), data: PullResultSchema }),
    z.object({ event: z.literal('problem'), data: ProblemSchema }),
    z.object({ event: z.literal('shutdown'), data: z.object({ reason: z.string() }) }),
  ])
  .openapi('PullStreamEvent', {
    description: 'One server-sent event of a pull: `event:` name, `data:` JSON',
  })

const pullRoute = createRoute({
  method: 'post',
  path: '/v1/images/pull',
  operationId: 'pullImage',
  tags: ['images'],
  summary: 'Pull an image from a configured registry',
  description: [
    'Only from a registry host the gateway’s configuration lists (`registries`; `docker.io` for',
    'Docker Hub), and only an image the caller’s policy `images` patterns allow (a digest is part',
    'of the reference they must match); otherwise 403 and nothing reaches the engine. The',
    'configured credentials are sent to the engine and never shown. With `Accept:',
    'text/event-stream` the answer is server-sent events: `progress` (per layer and overall, at',
    'most four a second), then `end` with the image id and digest, or `problem`; otherwise JSON',
    'once the pull is done. 404: the registry has no such image; 403 also when the registry',
    'refuses the credentials (`registry-denied`); 502 `registry-unavailable` and 504',
    '`registry-timeout` when the registry cannot be reached or does not answer in time;',
    '502 `registry-error` when it fails once the pull has begun (a layer not served). A failure',
    'after the event stream began is its last event, `problem`, with no `end`: no image is left.',
  ].join(' '),
  // As events, a stream like any other: one of the client's stream slots while the pull runs.
  ...scoped('images:write', { eventStream: true, noQuery: true }),
  request: {
    body: { required: true, content: { 'application/json': { schema: PullBody } } },
  },
  responses: {
    200: {
      description: 'Pulled (JSON), or the pull as it goes (event stream)',
      content: {
        'application/json': { schema: PullResultSchema },
        'text/event-stream': { schema: PullStreamEvent },
      },
    },
    ...problems(400, 404, 413, 415, ...ENGINE_PROBLEMS),
  },
})

const DeletedSchema = z
  .object({
    untagged: z.array(z.string()),
    deleted: z
      .array(z.string())
      .openapi({ description: 'Image and layer ids removed from the host' }),
  })
  .openapi('DeletedImage')

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v1/images/{ref}',
  operationId: 'deleteImage',
  tags: ['images'],
  summary: 'Remove an image (or one of its tags)',
  description: [
    'URL-encode the reference. By tag or digest the engine removes that name, and the image once',
    'no name is left; by id, the image with every name. The caller’s policy must allow the name',
    '(by id: every name of the image, a `repo@sha256:…` name counting as allowed when a tag of that',
    'repository on the image is); otherwise 404, as for a missing image.',
    'An image a container uses answers 409.',
  ].join(' '),
  ...scoped('images:write', { noQuery: true }),
  request: {
    params: ImageRefParams,
  },
  responses: {
    200: { description: 'Removed', content: { 'application/json': { schema: DeletedSchema } } },
    ...problems(400, 404, 409, 413, ...ENGINE_PROBLEMS),
  },
})

export function imageWriteRoutes(deps: StreamDependencies, logError: ErrorLogger) {
  const app = router()

  app.openapi(pullRoute, async (c) => {
    const { ref } = c.req.valid('json')
    const auth = allowPull(c, deps.settings, ref)
    const engine = engineScope(c).client
    const target = pulledRef(ref)
    const failed = (error: unknown) => {
      // The engine's words (hosts, URLs) go to the log only; the problem says what failed.
      if (error instanceof ProblemError && error.cause instanceof Error)
        logError(`pull of ${target} failed`, error.cause)
      return error
    }
    const { repository, tag, digest } = parseImageRef(ref)
    const response = await engine
      .request('POST', '/images/create', {
        query: { fromImage: repository, tag: digest ?? tag ?? 'latest' },
        headers: auth === undefined ? undefined : { 'x-registry-auth': auth },
        signal: c.req.raw.signal,
        timeoutMs: deps.settings.pullTimeoutMs,
        held: true,
        accept: [404, 500],
      })
      .catch((error: unknown) => {
        // The engine answers a pull once the registry gave it the manifest: its silence until the
        // timeout is the registry's.
        throw error instanceof ProblemError && error.code === 'engine-timeout'
          ? failed(pullTimedOut(target, error))
          : error
      })
    if (!response.ok) throw failed(pullFailure(await errorMessage(response), target))
    const body = response.body
    const tracker = new PullTracker()
    const finish = async (signal: AbortSignal) => {
      const image = parseEngine(
        EngineImageInspect,
        await engine.json('GET', `/images/${target}/json`, { signal }),
        'image',
      )
      const named = (image.RepoDigests ?? []).find((d) => d.startsWith(`${repository}@`))
      return {
        ref: target,
        id: image.Id,
        digest: digest ?? tracker.digest ?? named?.slice(repository.length + 1) ?? null,
        upToDate: tracker.upToDate,
      }
    }
    if (!acceptsEventStream(c)) {
      // The image's inspect is sent as soon as the `Status:` record is in, not after the body's
      // end: the engine ends the body some milliseconds later (7.6 ms at the median, 1.8–12.3,
      // and the inspect took 8.6: bench/README.md, "Image pull"), time a direct pull never waits.
      // A failure after the record still wins: the inspect's answer is then dropped.
      let early: ReturnType<typeof finish> | undefined
      const inspectOnceFinished = () => {
        if (!tracker.finished || early) return
        early = finish(c.req.raw.signal)
        early.catch(() => {})
      }
      await readPull(body, tracker, target, undefined, inspectOnceFinished).catch((error) => {
        throw failed(error)
      })
      return c.json(await (early ?? finish(c.req.raw.signal)), 200)
    }
    return sseResponse(
      sseSettings(deps),
      (error) => deps.toProblem(failed(error)),
      async (sink) => {
        let sent = -1
        let last = 0
        const send = () => {
          sent = tracker.version
          last = Date.now()
          return sink.send({ event: 'progress', data: JSON.stringify(tracker.progress()) })
        }
        await readPull(body, tracker, target, sink.signal, async () => {
          if (tracker.version !== sent && Date.now() - last >= PROGRESS_INTERVAL_MS) await send()
        })
        if (sent !== tracker.version && tracker.version > 0) await send()
        await sink.send({ event: 'end', data: JSON.stringify(await finish(sink.signal)) })
      },
      sentPath(c),
    ) as unknown as ReturnType<typeof c.json<z.infer<typeof PullResultSchema>, 200>>
  })

  app.openapi(deleteRoute, async (c) => {
    const { ref } = c.req.valid('param')
    const guard = c.get('guard')
    const signal = c.req.raw.signal
    const engine = engineScope(c).client
    const missing = () => notFound(`No such image: ${ref}`)
    const image = parseEngine(
      EngineImageInspect,
      await engine.json('GET', `/images/${ref}/json`, { signal }).catch((error: unknown) => {
        throw error instanceof ProblemError && error.status === 404 ? missing() : error
      }),
      'image',
    )
    if (!isAdmin(guard.principal)) {
      const tags = image.RepoTags ?? []
      const allowed = (name: string) =>
        guard.principal.policy.images.some((pattern) => globMatches(pattern, name))
      // A `repo@sha256:…` name is another handle on a repository: the caller's when the name
      // itself is allowed, or one of that repository's tags on this image is.
      const digestAllowed = (name: string) => {
        const repository = name.slice(0, name.indexOf('@'))
        return allowed(name) || tags.some((t) => t.startsWith(`${repository}:`) && allowed(t))
      }
      // By id the engine removes every name: each must be the caller's to remove, and there must
      // be one (an image with none, a commit or one whose tag moved, is nobody's to see or remove).
      const byName = !image.Id.replace('sha256:', '').startsWith(ref.replace('sha256:', ''))
      const digests = image.RepoDigests ?? []
      const ok = byName
        ? policyAllowsRef(guard.principal, ref)
        : tags.length + digests.length > 0 && tags.every(allowed) && digests.every(digestAllowed)
      if (!ok) guard.deny('image-not-allowed', ref, missing())
    }
    const answer = await engine.json('DELETE', `/images/${ref}`, { signal }).catch(
      refusedAs({
        409: 'The image is in use by a container, or has several names (remove them by name)',
      }),
    )
    const items = z
      .array(z.object({ Untagged: z.string().optional(), Deleted: z.string().optional() }))
      .parse(answer ?? [])
    return c.json(
      {
        untagged: items.flatMap((i) => (i.Untagged ? [i.Untagged] : [])),
        deleted: items.flatMap((i) => (i.Deleted ? [i.Deleted] : [])),
      },
      200,
    )
  })

  return app
}

/**
 * The checks before a pull reaches the engine: the registry is configured, the policy allows the
 * reference. Answers the `X-Registry-Auth` value for the registry, if it has credentials.
 */
function allowPull(c: Context<AppEnv>, settings: GatewaySettings, ref: string): string | undefined {
  const guard = c.get('guard')
  const { registry } = parseImageRef(ref)
  const access = Object.hasOwn(settings.registries, registry)
    ? settings.registries[registry]
    : undefined
  if (!access) {
    // The operator's configuration, not a policy: audit mode does not let it through.
    const error = new ProblemError(403, 'forbidden', {
      detail: `Pulls from ${registry} are not configured on this gateway`,
    })
    guard.recordedDenial = true
    guard.record({
      outcome: 'denied',
      decision: 'deny',
      reason: 'registry-not-configured',
      target: ref,
      status: 403,
    })
    throw error
  }
  if (!policyAllowsRef(guard.principal, ref)) {
    guard.deny(
      'image-not-allowed',
      ref,
      new ProblemError(403, 'forbidden', {
        detail: `The image ${ref} is not on this client's allowlist`,
      }),
    )
  }
  return registryAuthHeader(access, registry)
}

function acceptsEventStream(c: Context<AppEnv>): boolean {
  return (c.req.header('accept') ?? '').toLowerCase().includes('text/event-stream')
}

/** Reads the engine's pull records into `tracker`; throws the pull's in-band failure. */
async function readPull(
  body: ReadableStream<Uint8Array> | null,
  tracker: PullTracker,
  ref: string,
  signal?: AbortSignal,
  onRecord?: () => void | Promise<void>,
): Promise<void> {
  if (!body) return
  const reader = body.pipeThrough(new NdjsonStream({ maxLineBytes: MAX_RECORD_BYTES })).getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((error: unknown) => {
        throw signal?.aborted ? error : brokenOff(error, ref)
      })
      if (done || signal?.aborted) return
      tracker.take(value.value, ref)
      await onRecord?.()
    }
  } finally {
    // The client left or the pull failed in-band: the engine connection goes now, not later.
    await reader.cancel().catch(() => {})
  }
}

/** The pull's time (`pullTimeoutMs`) ran out: a registry that stalls, as the engine waits on it. */
function pullTimedOut(ref: string, cause: unknown): ProblemError {
  return new ProblemError(504, 'registry-timeout', {
    detail: `The registry of ${ref} did not answer in time`,
    cause,
  })
}

/** The engine's progress stream failed before its end: timed out, or the connection broke. */
function brokenOff(error: unknown, ref: string): unknown {
  if (error instanceof ProblemError) return error
  if ((error as { name?: unknown } | null)?.name === 'TimeoutError') return pullTimedOut(ref, error)
  return new ProblemError(502, 'engine-error', {
    detail: `The pull of ${ref} broke off: the Docker Engine's progress stream ended early`,
    cause: error,
  })
}

async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '')
  try {
    const body = JSON.parse(text) as { message?: unknown }
    if (typeof body.message === 'string') return body.message
  } catch {
    // Not JSON: the text itself.
  }
  return text.slice(0, 500) || `status ${response.status}`
}
