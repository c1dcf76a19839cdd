/**
 * @module Where the engine is, read from the docker CLI's own environment variables.
 *
 * `DOCKER_HOST` (`unix://`, `tcp://`, `http://`, `https://`), `DOCKER_TLS_VERIFY` and
 * `DOCKER_CERT_PATH` mean here what they mean to the docker CLI.
 */
const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'

export type EngineTarget =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; origin: string }
  | { kind: 'tls'; origin: string; certPath: string; verify: boolean }

export interface DockerEnv {
  DOCKER_HOST?: string | undefined
  DOCKER_TLS_VERIFY?: string | undefined
  DOCKER_TLS?: string | undefined
  DOCKER_CERT_PATH?: string | undefined
  HOME?: string | undefined
}

/** Reads the target like the docker CLI; throws a `TypeError` that says what is wrong. */
export function engineTargetFromEnv(env: DockerEnv): EngineTarget {
  const host = env.DOCKER_HOST?.trim() || DEFAULT_DOCKER_HOST
  const verify = Boolean(env.DOCKER_TLS_VERIFY)
  const tls = verify || Boolean(env.DOCKER_TLS)
  const certPath = env.DOCKER_CERT_PATH || `${env.HOME ?? ''}/.docker`
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length)
    if (!socketPath.startsWith('/')) {
      throw new TypeError(`Cannot use DOCKER_HOST ${shown(host)}: the socket path must be absolute`)
    }
    return { kind: 'unix', socketPath }
  }
  let url: URL
  try {
    url = new URL(host.replace(/^tcp:\/\//, tls ? 'https://' : 'http://'))
  } catch {
    throw new TypeError(`Cannot parse DOCKER_HOST: ${shown(host)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(
      `Cannot use DOCKER_HOST ${shown(host)}: only unix://, tcp://, http:// and https:// are supported`,
    )
  }
  if (url.pathname !== '/' || url.search || url.username) {
    throw new TypeError(`Cannot use DOCKER_HOST ${shown(host)}: expected scheme://host:port only`)
  }
  // The docker CLI's default port is 2375, or 2376 with TLS.
  const port = url.port || (url.protocol === 'https:' ? '2376' : '2375')
  const origin = `${url.protocol}//${url.hostname}:${port}`
  if (url.protocol === 'https:') return { kind: 'tls', origin, certPath, verify }
  return { kind: 'tcp', origin }
}

/**
 * A host as a refusal shows it (on stderr, in a log): credentials written into it (which are
 * refused) never appear, as `ssh://user:password@host` or `tcp://user:password@host:2375`.
 */
function shown(host: string): string {
  return host.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@')
}

/**
 * The target of one configured engine (`engines.<name>` in the config file): its `host` as
 * `DOCKER_HOST`, `tlsVerify` as `DOCKER_TLS_VERIFY`, `certPath` as `DOCKER_CERT_PATH`, and only
 * those: the process's own `DOCKER_*` variables are `DOCKER_HOST`'s, not this engine's.
 */
export function engineTargetFromEntry(
  entry: { host: string; tlsVerify?: boolean | undefined; certPath?: string | undefined },
  home: string | undefined,
): EngineTarget {
  return engineTargetFromEnv({
    DOCKER_HOST: entry.host,
    DOCKER_TLS_VERIFY: entry.tlsVerify ? '1' : undefined,
    DOCKER_CERT_PATH: entry.certPath,
    HOME: home,
  })
}

export function describeTarget(target: EngineTarget): string {
  return target.kind === 'unix' ? `unix://${target.socketPath}` : target.origin
}
