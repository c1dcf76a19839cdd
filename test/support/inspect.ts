import type { EngineContainerInspect } from '../../src/engine/types.ts'

/** An engine inspect answer with only what the views and the read model read, for unit tests. */
export function inspectOf(
  id: string,
  created: string,
  more: { name?: string; running?: boolean; labels?: Record<string, string> } = {},
): EngineContainerInspect {
  const running = more.running ?? false
  return {
    Id: id,
    Name: `/${more.name ?? id}`,
    Created: created,
    Image: 'sha256:0',
    State: {
      Status: running ? 'running' : 'exited',
      Running: running,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: running ? 1 : 0,
      ExitCode: 0,
      Error: '',
      StartedAt: '2026-12-03T10:00:00.000000001Z',
      FinishedAt: '0001-01-01T00:00:00Z',
    },
    Config: {
      Image: 'busybox',
      Cmd: ['true'],
      Entrypoint: null,
      Env: [],
      Labels: more.labels ?? {},
      WorkingDir: '',
      Tty: false,
    },
    HostConfig: {},
  }
}
