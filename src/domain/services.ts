/**
 * @module The Swarm service the gateway builds from a curated request: the task template is
 * the gateway's own, under the same rules as a container's HostConfig (`routes/containers.create.ts`).
 *
 * Pure: no I/O. What API 1.41 can express is forced here: all capabilities dropped (1.41 is the
 * first version with `CapabilityDrop`), no mounts, no published ports, no networks but those the
 * policy names, memory, CPU and pids limits (`Limits.Pids`, also new in 1.41), json-file logs with
 * a size cap, a bounded restart policy, and the owner label on the service and its containers.
 * What it cannot express (no-new-privileges, swap equal to memory) is listed in README ("Swarm").
 */
import { OWNER_LABEL } from './containers.ts'

/** What the gateway reads of a create request: the container-create fields plus `replicas`. */
export interface ServiceRequest {
  image: string
  name?: string | undefined
  cmd?: readonly string[] | undefined
  entrypoint?: readonly string[] | undefined
  env?: Readonly<Record<string, string>> | undefined
  labels?: Readonly<Record<string, string>> | undefined
  workingDir?: string | undefined
  tty?: boolean | undefined
  replicas: number
  /** Networks by name; only those the policy allows reach this point. */
  networks?: readonly string[] | undefined
}

/** A service task's limits, after the request, the policy and the gateway's defaults. */
export interface TaskResources {
  memory: number
  pids: number
  cpus: number
}

/**
 * A task that fails is restarted at most this many times, 5 s apart: a crashing job cannot spin
 * on the host. A task that exits 0 is done (`on-failure`), like a container's `no` restart
 * policy for a job that succeeded.
 */
export const TASK_RESTARTS = { Condition: 'on-failure', MaxAttempts: 3, Delay: 5_000_000_000 }

/** json-file with a size cap, as containers get: readable through the logs API, bounded on disk. */
const LOG_DRIVER = { Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '3' } }

/**
 * Service ids are 25 lowercase base-36 characters; a name of that shape could be taken for one
 * (the engine resolves an id before a name), so it is refused as a name.
 */
export const SERVICE_ID_LIKE = /^[a-z0-9]{25}$/

/** The image reference a service was asked for, beside the image id its tasks run. */
export const IMAGE_LABEL = 'dockgate.image'

/**
 * The engine's `ServiceSpec` for a create: every field that could widen access is forced.
 *
 * `imageId` is the image's id on the manager, not its reference: a node starting a task of an
 * image named by reference first pulls it from its registry (whatever `registries` says; the
 * engine's own words: "we always try to pull the image"), and skips that only for an image id.
 * So tasks run exactly the image the manager has, from each node's own store, and no node pulls.
 */
export function serviceSpec(
  request: ServiceRequest,
  owner: string,
  resources: TaskResources,
  imageId: string,
) {
  const labels = { ...request.labels, [OWNER_LABEL]: owner }
  return {
    ...(request.name === undefined ? {} : { Name: request.name }),
    Labels: { ...labels, [IMAGE_LABEL]: request.image },
    TaskTemplate: {
      ContainerSpec: {
        Image: imageId,
        // The engine's words: Command is the entrypoint, Args the command.
        ...(request.entrypoint === undefined ? {} : { Command: [...request.entrypoint] }),
        ...(request.cmd === undefined ? {} : { Args: [...request.cmd] }),
        Env: Object.entries(request.env ?? {}).map(([key, value]) => `${key}=${value}`),
        Labels: labels,
        ...(request.workingDir === undefined ? {} : { Dir: request.workingDir }),
        TTY: request.tty ?? false,
        OpenStdin: false,
        ReadOnly: false,
        Mounts: [],
        CapabilityDrop: ['ALL'],
        CapabilityAdd: [],
        Secrets: [],
        Configs: [],
        Init: false,
      },
      Resources: {
        Limits: {
          MemoryBytes: resources.memory,
          NanoCPUs: Math.round(resources.cpus * 1e9),
          Pids: resources.pids,
        },
      },
      RestartPolicy: TASK_RESTARTS,
      LogDriver: LOG_DRIVER,
      Networks: (request.networks ?? []).map((name) => ({ Target: name })),
    },
    Mode: { Replicated: { Replicas: request.replicas } },
    EndpointSpec: { Mode: 'vip', Ports: [] },
  }
}

/**
 * The spec of an update that changes the number of replicas only: everything else is the
 * engine's spec as it was (`Spec` from an inspect), so nothing else can be changed this way.
 */
export function withReplicas(spec: Readonly<Record<string, unknown>>, replicas: number) {
  return { ...spec, Mode: { Replicated: { Replicas: replicas } } }
}
