/**
 * @module Builds the engine's create body from the curated request, server side.
 *
 * Clients never send a HostConfig: every field that could widen access (privileged, binds,
 * mounts, devices, capabilities, host namespaces, networks, log drivers, restart policies) is
 * either absent from the curated schema or forced here (docs/engine-notes.md#container-create).
 */
import { OWNER_LABEL, RESERVED_LABEL_PREFIXES, reservedPrefixOf } from '../domain/containers.ts'
import type { Guard } from '../domain/guard.ts'
import { BASE_DEFAULTS, BUILT_IN_MAX, globMatches } from '../domain/policy.ts'
import { isAdmin } from '../domain/principal.ts'
import { badRequest, ProblemError } from '../errors.ts'
import type { CreateContainerBody } from './containers.schemas.ts'

/** What a created container gets, after the request, the policy and the gateway's defaults. */
export interface Resources {
  memory: number
  pids: number
  cpus: number
}

type Limit = keyof Resources

/**
 * Applies the principal's policy to a create request: the image must be on its allowlist
 * (admins excepted), each limit is the request's, else the policy default, else the gateway's
 * default — never above the policy's maximum, or the built-in one where the policy sets none.
 * In audit mode a breach is recorded and allowed.
 */
export function checkCreatePolicy(
  guard: Guard,
  request: Pick<CreateContainerBody, 'image' | 'resources'>,
): Resources {
  const { principal } = guard
  const policy = principal.policy
  if (
    !isAdmin(principal) &&
    !policy.images.some((pattern) => globMatches(pattern, request.image))
  ) {
    guard.deny(
      'image-not-allowed',
      request.image,
      new ProblemError(403, 'forbidden', {
        detail: `The image ${request.image} is not on this client's allowlist`,
      }),
    )
  }
  const pick = (limit: Limit) => {
    const max = policy.max[limit] ?? BUILT_IN_MAX[limit]
    const asked = request.resources?.[limit]
    if (asked !== undefined && asked > max) {
      guard.deny(
        'resource-over-max',
        request.image,
        new ProblemError(403, 'forbidden', {
          detail: `resources.${limit} ${asked} is above this client's maximum of ${max}`,
        }),
      )
    }
    if (asked !== undefined) return asked
    return Math.min(policy.defaults[limit] ?? BASE_DEFAULTS[limit], max)
  }
  return { memory: pick('memory'), pids: pick('pids'), cpus: pick('cpus') }
}

/** json-file with a size cap: readable through the logs API, and it cannot fill the disk. */
const LOG_CONFIG = { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } }

/**
 * A request may not set the gateway's own labels (ownership) nor Docker's; 400 before anything
 * else. The engine's label keys are case-sensitive, but `Dockgate.owner` would read as ours.
 */
export function refuseReservedLabels(labels: Readonly<Record<string, string>> | undefined): void {
  const reserved = Object.keys(labels ?? {}).filter((key) => reservedPrefixOf(key) !== undefined)
  if (reserved.length > 0) {
    throw badRequest(
      `Labels starting with ${RESERVED_LABEL_PREFIXES.join(', ')} (in any case) are set by the gateway or reserved by Docker`,
      reserved.map((key) => ({ name: `body.labels.${key}`, reason: 'reserved label prefix' })),
    )
  }
}

export function engineCreateBody(
  request: CreateContainerBody,
  owner: string,
  resources: Resources,
) {
  refuseReservedLabels(request.labels)
  const { memory, cpus, pids } = resources
  return {
    Image: request.image,
    Cmd: request.cmd ?? null,
    Entrypoint: request.entrypoint ?? null,
    Env: Object.entries(request.env ?? {}).map(([key, value]) => `${key}=${value}`),
    Labels: { ...request.labels, [OWNER_LABEL]: owner },
    WorkingDir: request.workingDir ?? '',
    Tty: request.tty ?? false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    OpenStdin: false,
    StdinOnce: false,
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: 'none',
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Memory: memory,
      // Equal to Memory: no swap beyond the limit (the engine's default doubles it).
      MemorySwap: memory,
      NanoCpus: Math.round(cpus * 1e9),
      PidsLimit: pids,
      LogConfig: LOG_CONFIG,
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      Binds: null,
      Mounts: [],
      Devices: [],
      PortBindings: {},
      PublishAllPorts: false,
      AutoRemove: false,
    },
  }
}
