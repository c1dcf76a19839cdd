/**
 * @module The curated container resource: what clients send and what they get back.
 */
import { z } from '@hono/zod-openapi'
import { QueryBoolean } from './common.ts'

/** Docker reference grammar (domain, path components, tag, digest), or an image id. */
export const IMAGE_REF =
  /^(?:(?:sha256:)?[a-f0-9]{12,64}|(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?)\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?)$/

export const ImageRef = z
  .string()
  .max(255)
  .regex(IMAGE_REF, 'an image reference (name[:tag][@digest]) or image id')
  .openapi({ example: 'busybox:latest' })

export const CONTAINER_STATES = [
  'created',
  'restarting',
  'running',
  'removing',
  'paused',
  'exited',
  'dead',
]

const ContainerState = z.enum(CONTAINER_STATES)

const LabelKey = z
  .string()
  .min(1)
  .max(255)
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9._/-]*$/,
    'letters, digits and . _ / -, starting with a letter or digit',
  )

const LabelValue = z.string().max(4096)

const EnvKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^=\0]+$/, 'no "=" and no NUL')

/** Labels under this prefix are the gateway's own (ownership); clients may not set them. */
export const RESERVED_LABEL_PREFIX = 'dockgate.'
export const OWNER_LABEL = 'dockgate.owner'

const Labels = z.record(LabelKey, LabelValue)

export const LabelSelector = z
  .string()
  .max(512)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._/-]*(=[^\0\r\n]*)?$/, '`key` or `key=value`')

export const ListContainersQuery = z.object({
  all: QueryBoolean.optional().openapi({ description: 'Include stopped containers' }),
  label: z
    .union([LabelSelector, z.array(LabelSelector).max(32)])
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
  limit: z.coerce.number().int().min(1).max(1000).optional(),
})

export const ResourcesSchema = z
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
    cmd: z.array(z.string().max(65536)).max(1024).optional(),
    entrypoint: z.array(z.string().max(65536)).max(1024).optional(),
    env: z.record(EnvKey, z.string().max(65536)).optional(),
    labels: Labels.optional(),
    workingDir: z
      .string()
      .max(4096)
      .regex(/^\/[^\0]*$/, 'an absolute path')
      .optional(),
    tty: z.boolean().optional(),
    resources: ResourcesSchema.optional(),
  })
  .openapi('CreateContainer')

export type CreateContainerBody = z.infer<typeof CreateContainerBody>

export const CreateContainerQuery = z.object({
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

export const StopQuery = z.object({
  timeout: z.coerce
    .number()
    .int()
    .min(0)
    .max(3600)
    .optional()
    .openapi({ description: 'Seconds to wait before killing' }),
})

export const KillQuery = z.object({
  signal: z
    .string()
    .regex(
      /^(?:(?:SIG)?[A-Z][A-Z0-9+-]{0,15}|[1-9][0-9]?)$/,
      'a signal name (SIGTERM, HUP) or number',
    )
    .optional(),
})

export const DeleteQuery = z.object({
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
