/**
 * The real engine the tests run against, as `scripts/engine.sh up` described it, and a direct
 * line to it that bypasses the gateway (to check what the gateway did, through the engine itself).
 */
import { Agent, fetch as undiciFetch } from 'undici'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'

export interface TestEngineEnv {
  dockerHost: string
  socketPath: string
  tcpHost: string | undefined
  tlsHost: string | undefined
  tlsCertPath: string | undefined
  image: string
  nestedImage: string
}

/** The test engine's three wires, named, as the docker CLI's environment would give each. */
export function engineWires(env: TestEngineEnv) {
  return [
    ['unix socket', { DOCKER_HOST: env.dockerHost }],
    ['TCP', { DOCKER_HOST: env.tcpHost }],
    [
      'TLS with client certificates',
      { DOCKER_HOST: env.tlsHost, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: env.tlsCertPath },
    ],
  ] as const
}

export function testEngineEnv(): TestEngineEnv {
  const dockerHost = process.env.DOCKER_HOST
  if (!dockerHost?.startsWith('unix://')) {
    throw new Error('The tests expect scripts/engine.sh up to have set DOCKER_HOST=unix://…')
  }
  return {
    dockerHost,
    socketPath: dockerHost.slice('unix://'.length),
    tcpHost: process.env.DOCKGATE_TEST_TCP_HOST || undefined,
    tlsHost: process.env.DOCKGATE_TEST_TLS_HOST || undefined,
    tlsCertPath: process.env.DOCKGATE_TEST_TLS_CERT_PATH || undefined,
    image: process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox',
    nestedImage: 'dockgate-fixture/busybox:nested',
  }
}

let agent: Agent | undefined

/** A call straight to the engine socket, unversioned unless the path says otherwise. */
export async function direct(path: string, init: { method?: string; body?: unknown } = {}) {
  agent ??= new Agent({ connect: { socketPath: testEngineEnv().socketPath } })
  const response = await undiciFetch(`http://docker${path}`, {
    method: init.method ?? 'GET',
    dispatcher: agent,
    headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  const text = await response.text()
  return { status: response.status, text, json: () => JSON.parse(text) as unknown }
}

/** The engine's own view of a container, or undefined once it is gone. */
export async function engineInspect(ref: string): Promise<Record<string, any> | undefined> {
  const answer = await direct(`/containers/${encodeURIComponent(ref)}/json`)
  return answer.status === 404 ? undefined : (answer.json() as Record<string, any>)
}

/** Ids of the containers the engine has with a label, e.g. to prove nothing was left behind. */
export async function engineContainerIds(label: string): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }))
  const answer = await direct(`/containers/json?all=1&filters=${filters}`)
  return (answer.json() as { Id: string }[]).map((c) => c.Id).sort()
}

/** Creates a container straight on the engine (not through the gateway); answers its id. */
export async function createDirect(options: {
  name: string
  cmd: string[]
  tty?: boolean
  labels?: Record<string, string>
  /** More of the engine's `HostConfig` (a restart policy, `AutoRemove`); loopback only always. */
  hostConfig?: Record<string, unknown>
}): Promise<string> {
  const created = await direct(`/containers/create?name=${options.name}`, {
    method: 'POST',
    body: {
      Image: testEngineEnv().image,
      Cmd: options.cmd,
      Tty: options.tty ?? false,
      Labels: options.labels ?? {},
      HostConfig: { ...options.hostConfig, NetworkMode: 'none' },
    },
  })
  if (created.status !== 201) throw new Error(`create failed: ${created.text}`)
  return (created.json() as { Id: string }).Id
}

/** Runs a container straight on the engine (not through the gateway) and waits until it exits. */
export async function runDirect(options: {
  name: string
  cmd: string[]
  tty?: boolean
  labels?: Record<string, string>
  wait?: boolean
}): Promise<string> {
  const id = await createDirect(options)
  const started = await direct(`/containers/${id}/start`, { method: 'POST' })
  if (started.status !== 204) throw new Error(`start failed: ${started.text}`)
  if (options.wait ?? true) await direct(`/containers/${id}/wait`, { method: 'POST' })
  return id
}

/**
 * The second engine of the multi-engine tests: a separate private dockerd (scripts/test.sh
 * starts it: `DOCKGATE_STATE_DIR=.state/engine-b scripts/engine.sh up`), which the gateway
 * reaches over TLS with client certificates while the main one is reached over its Unix socket;
 * its socket is for the tests' own look at it.
 */
export function testEngineB(): { tlsHost: string; certPath: string; socketPath: string } {
  const tlsHost = process.env.DOCKGATE_TEST_ENGINE_B_TLS_HOST
  const certPath = process.env.DOCKGATE_TEST_ENGINE_B_CERT_PATH
  const socketPath = process.env.DOCKGATE_TEST_ENGINE_B_SOCKET
  if (!tlsHost || !certPath || !socketPath) {
    throw new Error(
      'The multi-engine tests need a second engine: DOCKGATE_TEST_ENGINE_B_TLS_HOST, …_CERT_PATH and …_SOCKET (scripts/test.sh sets them)',
    )
  }
  return { tlsHost, certPath, socketPath }
}

/** A call straight to another engine's socket (see {@link direct}). */
export async function directTo(
  socketPath: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
) {
  const dispatcher = new Agent({ connect: { socketPath } })
  try {
    const response = await undiciFetch(`http://docker${path}`, {
      method: init.method ?? 'GET',
      dispatcher,
      headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    const text = await response.text()
    return { status: response.status, text, json: () => JSON.parse(text) as any }
  } finally {
    await dispatcher.close()
  }
}

/**
 * The socket transport to the test engine, recording each call it carries (method and path with
 * its query, without the API version prefix): what reached the engine, in order.
 */
export function recordingTransport(): { transport: EngineTransport; calls: string[] } {
  const inner = createNodeTransport(
    engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
  )
  const calls: string[] = []
  const transport: EngineTransport = {
    description: inner.description,
    close: () => inner.close(),
    fetch(request, options) {
      const url = new URL(request.url)
      calls.push(`${request.method} ${url.pathname.replace(/^\/v[\d.]+/, '')}${url.search}`)
      return inner.fetch(request, options)
    },
  }
  return { transport, calls }
}

/** The socket transport to the test engine, counting the container list calls it carries. */
export function countingContainerLists(): {
  transport: EngineTransport
  counter: { readonly lists: number }
} {
  const { transport, calls } = recordingTransport()
  const counter = {
    get lists() {
      return calls.filter((call) => call.startsWith('GET /containers/json')).length
    },
  }
  return { transport, counter }
}
