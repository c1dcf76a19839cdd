/**
 * @module The curated Swarm resources: services (created from the container-create fields plus
 * `replicas`), their tasks, and nodes.
 */
import { z } from '@hono/zod-openapi'
import { SERVICE_ID_LIKE } from '../domain/services.ts'
import { strictQuery } from './common.ts'
import { CreateContainerBody, LabelSelector, MAX_LABEL_SELECTORS } from './containers.schemas.ts'

/**
 * Swarm's own rule for service names (a DNS label: letters, digits, `-` and `_` inside, at most
 * 63), minus the shape of a service id, which the engine would resolve first. Not swarmkit's
 * own pattern, `^[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*$`: linear in Go's RE2, it backtracks
 * exponentially in JavaScript on a name that ends in `-` (the conformance fuzzer found a
 * 50-character one that held the event loop for good). Each repetition here ends in exactly one
 * letter or digit, so a string splits into them one way only: linear.
 */
const SERVICE_NAME = /^[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9])*$/

export const ServiceName = z
  .string()
  .min(1)
  .max(63)
  .regex(SERVICE_NAME, 'letters and digits, `-` and `_` inside')
  .refine((name) => !SERVICE_ID_LIKE.test(name), 'not 25 lowercase letters and digits: an id')

export const ServiceRefParams = z.object({
  id: z
    .string()
    .max(63)
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, 'a service id, id prefix or name')
    .openapi({
      param: { name: 'id', in: 'path' },
      description: 'Service id, unique id prefix, or name',
      example: 'web',
    }),
})

const NetworkName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'a network name')

export const CreateServiceBody = CreateContainerBody.omit({ name: true })
  .extend({
    name: ServiceName.optional().openapi({
      description: 'A name of 25 lowercase letters and digits is refused: it reads as a service id',
    }),
    replicas: z.number().int().min(0).max(1000).openapi({
      description: 'Tasks to run; each counts towards the client’s maxContainers',
    }),
    networks: z.array(NetworkName).max(16).optional().openapi({
      description:
        'Swarm networks to attach the tasks to: only those the client’s policy names (`policy.networks`); none by default',
    }),
  })
  .openapi('CreateService')

export type CreateServiceBody = z.infer<typeof CreateServiceBody>

export const ScaleServiceBody = z
  .strictObject({ replicas: z.number().int().min(0).max(1000) })
  .openapi('ScaleService')

export const ListServicesQuery = strictQuery({
  label: z
    .union([LabelSelector, z.array(LabelSelector).max(MAX_LABEL_SELECTORS)])
    .optional()
    .transform((value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]))
    .openapi({
      description: '`key` or `key=value`; repeat to require several',
      param: { style: 'form', explode: true },
    }),
})

const RedactedLabels = z.record(z.string(), z.string().nullable()).openapi({
  description: 'Values of secret-looking keys (the secretLabelPatterns setting) are null',
})

export const ServiceSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    image: z.string(),
    replicas: z.number().int().nullable().openapi({ description: 'Null for a global service' }),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
    labels: RedactedLabels,
    config: z.object({
      cmd: z.array(z.string()).nullable(),
      entrypoint: z.array(z.string()).nullable(),
      env: z.record(z.string(), z.string().nullable()).openapi({
        description: 'Values are null (redacted) unless the key is in the exposeEnvKeys setting',
      }),
      workingDir: z.string().nullable(),
      tty: z.boolean(),
    }),
    resources: z.object({
      memory: z.number().int().nullable(),
      cpus: z.number().nullable(),
      pids: z.number().int().nullable(),
    }),
  })
  .openapi('Service')

export const ServiceListSchema = z
  .object({ services: z.array(ServiceSchema) })
  .openapi('ServiceList')

export const TaskSchema = z
  .object({
    id: z.string(),
    slot: z.number().int().nullable(),
    node: z.string().nullable().openapi({ description: 'The id of the node it was placed on' }),
    state: z.string().openapi({ example: 'running' }),
    desiredState: z.string().openapi({ example: 'running' }),
    message: z.string().nullable(),
    error: z.string().nullable().openapi({
      description: 'Why the task failed, in the gateway’s fixed words (never the engine’s)',
    }),
    containerId: z.string().nullable(),
    exitCode: z.number().int().nullable(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Task')

export const TaskListSchema = z.object({ tasks: z.array(TaskSchema) }).openapi('TaskList')

export const NodeSchema = z
  .object({
    id: z.string(),
    hostname: z.string().nullable(),
    role: z.string().openapi({ example: 'manager' }),
    availability: z.string().openapi({ example: 'active' }),
    state: z.string().openapi({ example: 'ready' }),
    address: z.string().nullable(),
    leader: z.boolean(),
    engineVersion: z.string().nullable(),
  })
  .openapi('Node')

export const NodeListSchema = z.object({ nodes: z.array(NodeSchema) }).openapi('NodeList')
