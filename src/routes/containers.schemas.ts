/**
 * @module The curated container resource: what clients send and what they get back.
 */
import { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { RESERVED_LABEL_PREFIXES } from '../domain/containers.ts'
import type { AppEnv } from '../http/context.ts'
import { QueryBoolean, QueryInteger, strictQuery, validationHook } from './common.ts'
import { SIGNALS } from './signals.ts'

// Docker's reference grammar (domain, path components, tag, digest), or an image id.
const HEX_ID = '(?:sha256:)?[a-f0-9]{12,64}'
const HOST_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?'
const PORT = '(?::[0-9]{1,5})'
/**
 * A first component names a registry only with a dot, a port, or as `localhost`: anything else
 * is a name on Docker Hub, where upper case is refused (`KnaA/app` got the engine's 400
 * "repository name must be lowercase" on 20.10, while `Kna.A/app`, `KnaA:5000/app` and
 * `localhost/app` are registries and got a 404). So an upper-case first component is allowed
 * only where it is a registry.
 */
const DOMAIN = `(?:localhost${PORT}?|${HOST_LABEL}(?:\\.${HOST_LABEL})+${PORT}?|${HOST_LABEL}${PORT})`
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
const TAG = '(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})'
const DIGEST = '(?:@sha256:[a-f0-9]{64})'
const IMAGE_REF = new RegExp(
  `^(?:${HEX_ID}|(?:${DOMAIN}\\/)?${COMPONENT}(?:\\/${COMPONENT})*${TAG}?${DIGEST}?)$`,
)

/**
 * The engine names an image at most 255 characters long once it has put `docker.io/library/`
 * in front of a name without a registry (`busybox` is `docker.io/library/busybox`), and refuses a
 * longer one with a 400 of its own: a reference of at most 255 - 18 characters always fits.
 */
const IMAGE_REF_MAX = 255 - 'docker.io/library/'.length

export const ImageRef = z
  .string()
  .max(IMAGE_REF_MAX)
  .regex(IMAGE_REF, 'an image reference (name[:tag][@digest]) or image id')
  .openapi({
    example: 'busybox:latest',
    description: `At most ${IMAGE_REF_MAX} characters: the engine's 255 for a name, with the \`docker.io/library/\` it puts in front of one without a registry`,
  })

/** `{ref}` in an image route's path: inspect and delete take the same. */
export const ImageRefParams = z.object({
  ref: ImageRef.openapi({
    param: { name: 'ref', in: 'path' },
    description: 'Image reference or id, URL-encoded',
  }),
})

const CONTAINER_STATES = [
  'created',
  'restarting',
  'running',
  'removing',
  'paused',
  'exited',
  'dead',
]

const ContainerState = z.enum(CONTAINER_STATES)

const LABEL_KEY = /^[a-zA-Z0-9][a-zA-Z0-9._/-]*$/
const LabelKey = z
  .string()
  .min(1)
  .max(255)
  .regex(LABEL_KEY, 'letters, digits and . _ / -, starting with a letter or digit')

const LabelValue = z.string().max(4096)

// biome-ignore lint/suspicious/noControlCharactersInRegex: it refuses NUL, written \x00 for other validators
const ENV_KEY = /^[^=\x00]+$/
const EnvKey = z.string().min(1).max(255).regex(ENV_KEY, 'no "=" and no NUL')

/**
 * The reserved prefixes as the document states them, in any case (`Dockgate.owner` too), as
 * src/routes/containers.create.ts refuses them; JSON Schema patterns have no case-insensitive flag.
 */
const RESERVED_LABEL_PATTERN = `^(?:${RESERVED_LABEL_PREFIXES.map((prefix) =>
  [...prefix].map((ch) => (ch === '.' ? '\\.' : `[${ch}${ch.toUpperCase()}]`)).join(''),
).join('|')})`

/**
 * The longest string one field of a create body takes: the body is at most 64 KiB of JSON
 * (`bodyLimitBytes`), so a longer maximum would be one the server answers 413 to.
 */
const MAX_FIELD = 32 * 1024

/**
 * A JSON object of string keys. zod's record skips a `__proto__` key (against prototype
 * pollution) while `JSON.parse` keeps it as an own key: refuse it like any other bad key rather
 * than drop it. The document states the keys' rules as `propertyNames`.
 */
function keyedRecord<V extends z.ZodType>(
  key: z.ZodString,
  value: V,
  propertyNames: Record<string, unknown>,
  description?: string,
) {
  const refuseProto = (raw: unknown, ctx: z.RefinementCtx) => {
    if (raw !== null && typeof raw === 'object' && Object.hasOwn(raw, '__proto__')) {
      ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'a key that is not allowed' })
    }
    return raw
  }
  // The generator passes OpenAPI 3.1 keywords through; its types predate propertyNames.
  const names = { propertyNames, description } as { description?: string }
  return z.preprocess(refuseProto, z.record(key, value)).openapi(names)
}

const Labels = keyedRecord(
  LabelKey,
  LabelValue,
  {
    minLength: 1,
    maxLength: 255,
    pattern: LABEL_KEY.source,
    not: { pattern: RESERVED_LABEL_PATTERN },
  },
  `Keys starting with ${RESERVED_LABEL_PREFIXES.map((p) => `\`${p}\``).join(', ')}, in any case, are refused (400): the first is the gateway's own (ownership), the others are the namespaces Docker reserves for itself.`,
)

export const Env = keyedRecord(EnvKey, z.string().max(MAX_FIELD), {
  minLength: 1,
  maxLength: 255,
  pattern: ENV_KEY.source,
  not: { const: '__proto__' },
})

/**
 * At most 16 selectors of 256 characters: even with every character percent-encoded UTF-8
 * (9 bytes) that is 37 KB, within the 64 KiB the Node entry allows a request line and headers.
 */
export const MAX_LABEL_SELECTORS = 16
export const LabelSelector = z
  .string()
  .max(256)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: it refuses NUL, written \x00 for other validators
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._/-]*(=[^\x00\r\n]*)?$/, '`key` or `key=value`')

export const ListContainersQuery = strictQuery({
  all: QueryBoolean.optional().openapi({ description: 'Include stopped containers' }),
  label: z
    .union([LabelSelector, z.array(LabelSelector).max(MAX_LABEL_SELECTORS)])
    .optional()
    .transform((value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]))
    .openapi({
      description:
        '`key` or `key=value`; repeat to require several. A value on a secret-looking key ' +
        '(the secretLabelPatterns setting) is refused: such values are redacted',
      param: { style: 'form', explode: true },
    }),
  status: ContainerState.optional(),
  name: z
    .string()
    .max(128)
    .regex(/^[a-zA-Z0-9_.-]+$/, 'part of a container name')
    .optional()
    .openapi({ description: 'Containers whose name contains this' }),
  limit: QueryInteger(1, 1000).optional(),
})

const ResourcesSchema = z
  .strictObject({
    memory: z
      .number()
      .int()
      .min(6 * 1024 * 1024)
      .max(2 ** 40)
      .optional()
      .openapi({ description: 'Memory limit in bytes (swap is not granted beyond it)' }),
    cpus: z.number().min(0.01).max(1024).optional().openapi({ description: 'CPUs, e.g. 0.5' }),
    pids: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .openapi({ description: 'Process limit' }),
  })
  .openapi('Resources')

export const CreateContainerBody = z
  .strictObject({
    image: ImageRef,
    name: z
      .string()
      // 12 to 64 lowercase hex digits are resolved as an id (prefix) only: such a name could
      // never be used, and would shadow another container's id on the engine.
      .regex(
        /^(?![0-9a-f]{12,64}$)[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}$/,
        '[a-zA-Z0-9][a-zA-Z0-9_.-]+: 2 to 128 characters, not 12 to 64 lowercase hex digits (an id)',
      )
      .optional()
      .openapi({
        description:
          'A name of 12 to 64 lowercase hex digits is refused: it could be taken for a container id',
      }),
    cmd: z.array(z.string().max(MAX_FIELD)).max(1024).optional(),
    entrypoint: z.array(z.string().max(MAX_FIELD)).max(1024).optional(),
    env: Env.optional(),
    labels: Labels.optional(),
    workingDir: z
      .string()
      .max(4096)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: it refuses NUL, written \x00 for other validators
      .regex(/^\/[^\x00]*$/, 'an absolute path')
      .optional(),
    tty: z.boolean().optional(),
    resources: ResourcesSchema.optional(),
  })
  .openapi('CreateContainer')

export type CreateContainerBody = z.infer<typeof CreateContainerBody>

export const CreateContainerQuery = strictQuery({
  start: QueryBoolean.optional().openapi({ description: 'Start the container once created' }),
})

const RedactedLabels = z.record(z.string(), z.string().nullable()).openapi({
  description: 'Values of secret-looking keys (the secretLabelPatterns setting) are null',
})

export const ContainerSummarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    image: z.string(),
    state: z.string().openapi({ example: 'running' }),
    createdAt: z.string().openapi({ format: 'date-time' }),
    startedAt: z.string().nullable().openapi({ format: 'date-time' }),
    exitCode: z.number().int().nullable().openapi({ description: 'Set once the container exited' }),
    labels: RedactedLabels,
  })
  .openapi('ContainerSummary')

export const ContainerListSchema = z
  .object({ containers: z.array(ContainerSummarySchema) })
  .openapi('ContainerList')

export const ContainerDetailSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    image: z.string(),
    imageId: z.string(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    restartCount: z.number().int(),
    state: z.object({
      status: z.string(),
      running: z.boolean(),
      paused: z.boolean(),
      restarting: z.boolean(),
      oomKilled: z.boolean(),
      exitCode: z.number().int().nullable(),
      error: z.string().nullable(),
      startedAt: z.string().nullable().openapi({ format: 'date-time' }),
      finishedAt: z.string().nullable().openapi({ format: 'date-time' }),
    }),
    config: z.object({
      cmd: z.array(z.string()).nullable(),
      entrypoint: z.array(z.string()).nullable(),
      env: z.record(z.string(), z.string().nullable()).openapi({
        description: 'Values are null (redacted) unless the key is in the exposeEnvKeys setting',
      }),
      labels: RedactedLabels,
      workingDir: z.string().nullable(),
      tty: z.boolean(),
    }),
    resources: z.object({
      memory: z.number().int().nullable(),
      memorySwap: z.number().int().nullable(),
      cpus: z.number().nullable(),
      pids: z.number().int().nullable(),
    }),
  })
  .openapi('ContainerDetail')

export const ContainerActionSchema = z
  .object({
    id: z.string(),
    state: z.string(),
    changed: z.boolean().openapi({ description: 'False when it was already in that state' }),
  })
  .openapi('ContainerAction')

export const StopQuery = strictQuery({
  timeout: QueryInteger(0, 3600)
    .optional()
    .openapi({ description: 'Seconds to wait before killing' }),
})

export const KillQuery = strictQuery({
  signal: z
    .enum(SIGNALS, { error: 'a signal name (SIGTERM, TERM, RTMIN+1) or number (1-31, 34-64)' })
    .optional()
    .openapi({ description: 'The signal to send (default SIGKILL)' }),
})

export const DeleteQuery = strictQuery({
  force: QueryBoolean.optional().openapi({ description: 'Kill a running container first' }),
})

export const WaitSchema = z
  .object({
    exitCode: z.number().int(),
    error: z.string().optional().openapi({
      description:
        'Present when the container could not start (its exit code is then 126 or 127 when its command could not run)',
      example:
        "The container's command could not be run: it is missing from the image or not executable",
    }),
  })
  .openapi('ContainerExit')

/** Read-your-writes across instances (`model/positions.ts`). */
export const POSITION_HEADER = 'dockgate-position'

export const PositionHeaders = z.object({
  [POSITION_HEADER]: z
    .string()
    .regex(/^\d{1,20}$/, 'a position (digits, as a change answered it)')
    .optional()
    .openapi({
      description:
        'The newest `Dockgate-Position` a change answered this client (on any instance): the answer reflects that change and everything before it',
    }),
})

/**
 * `PositionHeaders` checked on its own header, where the header validator ran (after the query
 * and path validators; see `documentedWithPositionHeader` in containers.ts): a bad one answers
 * the problem that validator gave. Answers the header's value (undefined: none was sent).
 */
export function checkPositionHeader(c: Context<AppEnv>): string | undefined {
  const value = c.req.header(POSITION_HEADER)
  if (value === undefined) return undefined
  const result = PositionHeaders.safeParse({ [POSITION_HEADER]: value })
  if (!result.success) validationHook({ target: 'header', ...result }, c)
  return value
}

/** The position a change answers, for `PositionHeaders` of later reads on any instance. */
export const POSITION_RESPONSE_HEADER = {
  'Dockgate-Position': {
    description:
      'This change’s position (an engine time in ns): send it back as `Dockgate-Position` and any instance answers reads that reflect it',
    schema: { type: 'string' as const, pattern: '^\\d{1,20}$' },
  },
}
