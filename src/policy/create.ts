/**
 * @module Builds the engine's create body from the curated request, server side.
 *
 * Clients never send a HostConfig: every field that could widen access (privileged, binds,
 * mounts, devices, capabilities, host namespaces, networks, log drivers, restart policies) is
 * either absent from the curated schema or forced here. See engine-api-facts §4.
 */
import { badRequest } from '../errors.ts'
import {
  type CreateContainerBody,
  OWNER_LABEL,
  RESERVED_LABEL_PREFIX,
} from '../routes/containers.schemas.ts'

export interface ResourceDefaults {
  memory: number
  pids: number
  cpus: number | undefined
}

export const DEFAULT_RESOURCES: ResourceDefaults = {
  memory: 512 * 1024 * 1024,
  pids: 256,
  cpus: undefined,
}

/** json-file with a size cap: readable through the logs API, and it cannot fill the disk. */
const LOG_CONFIG = { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } }

export function engineCreateBody(
  request: CreateContainerBody,
  owner: string,
  defaults: ResourceDefaults = DEFAULT_RESOURCES,
) {
  const reserved = Object.keys(request.labels ?? {}).filter((key) =>
    key.startsWith(RESERVED_LABEL_PREFIX),
  )
  if (reserved.length > 0) {
    throw badRequest(
      `Labels starting with ${RESERVED_LABEL_PREFIX} are set by the gateway`,
      reserved.map((key) => ({ name: `body.labels.${key}`, reason: 'reserved label prefix' })),
    )
  }
  const memory = request.resources?.memory ?? defaults.memory
  const cpus = request.resources?.cpus ?? defaults.cpus
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
      NanoCpus: cpus === undefined ? 0 : Math.round(cpus * 1e9),
      PidsLimit: request.resources?.pids ?? defaults.pids,
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
