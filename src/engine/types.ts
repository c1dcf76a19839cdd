/**
 * @module The parts of the engine's answers the gateway reads, as loose zod schemas.
 *
 * Loose on purpose: the engine adds fields between API versions; the gateway reads only these.
 */
import { z } from 'zod'

const Labels = z.record(z.string(), z.string()).nullish()
const StringList = z.array(z.string()).nullish()

export const EngineContainerInspect = z.looseObject({
  Id: z.string(),
  Name: z.string(),
  Created: z.string(),
  Image: z.string(),
  RestartCount: z.number().optional(),
  State: z.looseObject({
    Status: z.string(),
    Running: z.boolean(),
    Paused: z.boolean(),
    Restarting: z.boolean(),
    OOMKilled: z.boolean(),
    Dead: z.boolean(),
    Pid: z.number(),
    ExitCode: z.number(),
    Error: z.string(),
    StartedAt: z.string(),
    FinishedAt: z.string(),
  }),
  Config: z.looseObject({
    Image: z.string(),
    Cmd: StringList,
    Entrypoint: StringList,
    Env: StringList,
    Labels,
    WorkingDir: z.string().nullish(),
    Tty: z.boolean(),
    User: z.string().nullish(),
  }),
  HostConfig: z.looseObject({
    Memory: z.number().nullish(),
    MemorySwap: z.number().nullish(),
    NanoCpus: z.number().nullish(),
    PidsLimit: z.number().nullish(),
  }),
})
export type EngineContainerInspect = z.infer<typeof EngineContainerInspect>

export const EngineContainerListItem = z.looseObject({
  Id: z.string(),
  Labels,
  ImageID: z.string().nullish(),
})
export const EngineContainerList = z.array(EngineContainerListItem)

export const EngineCreated = z.looseObject({ Id: z.string(), Warnings: StringList })

export const EngineWait = z.looseObject({
  StatusCode: z.number(),
  Error: z.looseObject({ Message: z.string() }).nullish(),
})

export const EngineVersion = z.looseObject({
  Version: z.string(),
  ApiVersion: z.string(),
  MinAPIVersion: z.string().optional(),
  Os: z.string(),
  Arch: z.string(),
  KernelVersion: z.string().optional(),
  GitCommit: z.string().optional(),
  GoVersion: z.string().optional(),
})

export const EngineImageListItem = z.looseObject({
  Id: z.string(),
  RepoTags: StringList,
  RepoDigests: StringList,
  Created: z.number(),
  Size: z.number(),
  Labels,
})
export type EngineImageListItem = z.infer<typeof EngineImageListItem>
export const EngineImageList = z.array(EngineImageListItem)

export const EngineImageInspect = z.looseObject({
  Id: z.string(),
  RepoTags: StringList,
  RepoDigests: StringList,
  Created: z.string(),
  Size: z.number(),
  Architecture: z.string().optional(),
  Os: z.string().optional(),
  Author: z.string().nullish(),
  Config: z
    .looseObject({
      Cmd: StringList,
      Entrypoint: StringList,
      Env: StringList,
      WorkingDir: z.string().nullish(),
      Labels,
      User: z.string().nullish(),
    })
    .nullish(),
})

/** Parses an engine answer; a shape we did not expect is the engine's failure, not the client's. */
export function parseEngine<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  throw new EngineShapeError(what, result.error)
}

export class EngineShapeError extends Error {
  constructor(what: string, cause: unknown) {
    super(`Unexpected ${what} from the Docker Engine`, { cause })
    this.name = 'EngineShapeError'
  }
}
