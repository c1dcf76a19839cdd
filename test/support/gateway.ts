/**
 * An in-process gateway wired to the real engine through the Node unix transport, with one
 * token per role, and helpers that read like the calls other services make.
 */
import { afterAll } from 'vitest'
import { type App, type AppDependencies, createApp, type Gateway } from '../../src/app.ts'
import { firstOf, jwtAuthenticator } from '../../src/auth/jwt.ts'
import { hashToken, TokenStore } from '../../src/auth/tokens.ts'
import type { GatewaySettings } from '../../src/config.ts'
import type { AuditEntry } from '../../src/domain/audit.ts'
import { type Policy, PolicySchema } from '../../src/domain/policy.ts'
import type { Scope } from '../../src/domain/principal.ts'
import { EngineClient, type EngineClientOptions } from '../../src/engine/client.ts'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { EventHub } from '../../src/events/hub.ts'
import { countingTransport, type RequestLogEntry } from '../../src/http/observability.ts'
import { Metrics } from '../../src/observability/metrics.ts'
import type { StateStore } from '../../src/store/port.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { recordingTransport, testEngineEnv } from './engine.ts'

export const ROLES = {
  admin: ['admin'],
  reader: ['system:read', 'containers:read', 'logs:read', 'images:read'],
  writer: ['containers:read', 'containers:write', 'logs:read'],
  nobody: ['events:read'],
} as const satisfies Record<string, readonly Scope[]>

/** A built-in role, or the name of a client given to `testGateway({ clients })`. */
export type Role = keyof typeof ROLES | (string & {})
export const tokenOf = (role: Role) => `dgt_test-token-for-${role}`

export interface TestGateway {
  app: App
  /** Its start and close (started already; closed after the file's tests). */
  gateway: Gateway
  engine: EngineClient
  metrics: Metrics
  /** A request as a client with the given role sends it (no token with `role: null`). */
  call(path: string, init?: RequestInit & { role?: Role | null }): Promise<Response>
  json<T = any>(
    path: string,
    init?: RequestInit & { role?: Role | null },
  ): Promise<{ status: number; body: T; response: Response }>
}

export async function testGateway(
  options: {
    transport?: EngineTransport
    settings?: Partial<GatewaySettings>
    errors?: unknown[]
    /** Closes the gateway when aborted: open streams end with `shutdown`. */
    shutdown?: AbortSignal
    /** More clients, by name, with their scopes and policy. */
    clients?: Record<string, { scopes: Scope[]; policy?: Partial<Policy> }>
    /** Receives the audit records (none are printed in tests). */
    audit?: AuditEntry[]
    /** Receives the request log lines (none are printed in tests). */
    requestLog?: RequestLogEntry[]
    /** Builds the gateway's events hub (to watch it); one from the settings otherwise. */
    events?: (engine: EngineClient) => EventHub
    /** More of the app's ports (shared by instances: positions, …). */
    dependencies?: Partial<AppDependencies>
    /** Options of the engine client (timeouts), beyond the tests' `retryAfterSeconds: 5`. */
    engineOptions?: EngineClientOptions
    /** Also accept HS256 JWTs signed with this secret (policies by `sub` from `clients`). */
    jwtSecret?: string
    /** The state store (gateways given stores on one Redis prefix share their limits). */
    store?: StateStore
    /** The key that signs stream tickets (`DOCKGATE_SECRET`). */
    ticketSecret?: string
  } = {},
): Promise<TestGateway> {
  const transport =
    options.transport ??
    createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }))
  afterAll(() => transport.close())
  const clients = {
    ...Object.fromEntries(
      Object.entries(ROLES).map(([name, scopes]) => [name, { scopes, policy: undefined }]),
    ),
    ...options.clients,
  }
  const entries = await Promise.all(
    Object.entries(clients).map(async ([name, client]) => ({
      name,
      hash: await hashToken(tokenOf(name)),
      scopes: client.scopes,
      policy: client.policy && PolicySchema.parse(client.policy),
    })),
  )
  const metrics = new Metrics()
  const engine = new EngineClient(countingTransport(transport, metrics), {
    retryAfterSeconds: 5,
    ...options.engineOptions,
  })
  const events =
    options.events?.(engine) ??
    new EventHub(engine, {
      ringSize: options.settings?.eventsRingSize,
      queueLimit: options.settings?.eventsQueueLimit,
    })
  // Its upstream stream would hold transport.close() open (after-hooks run last-first).
  afterAll(() => events.close())
  const gateway = createApp({
    engine,
    authenticator: firstOf(
      new TokenStore(entries),
      jwtAuthenticator({
        secret: options.jwtSecret,
        policyOf: (subject) => entries.find((entry) => entry.name === subject)?.policy,
      }),
    ),
    settings: options.settings,
    logError: (_message, error) => options.errors?.push(error),
    audit: (entry) => options.audit?.push(entry),
    metrics,
    requestLog: (entry) => options.requestLog?.push(entry),
    events,
    store: options.store,
    ticketSecret: options.ticketSecret,
    ...options.dependencies,
  })
  gateway.start()
  afterAll(() => gateway.close())
  options.shutdown?.addEventListener('abort', () => gateway.close(), { once: true })
  const { app } = gateway
  const call = (path: string, init: RequestInit & { role?: Role | null } = {}) => {
    const { role = 'admin', ...rest } = init
    const headers = new Headers(rest.headers)
    if (role) headers.set('authorization', `Bearer ${tokenOf(role)}`)
    return Promise.resolve(app.request(path, { ...rest, headers }))
  }
  return {
    app,
    gateway,
    engine,
    metrics,
    call,
    async json(path, init) {
      const response = await call(path, init)
      const text = await response.text()
      return { status: response.status, body: text ? JSON.parse(text) : undefined, response }
    },
  }
}

/**
 * A gateway built and never started, whose one credential is `token` (as `DOCKGATE_TOKEN`, admin),
 * with the runtime ports given: only what a request makes reaches the engine, and `calls` lists
 * it. Closed after the file's tests.
 */
export function builtGateway(
  token: string,
  ports: Partial<AppDependencies> = {},
): { gateway: Gateway; calls: readonly string[] } {
  const recorder = recordingTransport()
  afterAll(() => recorder.transport.close())
  const gateway = createApp({
    engine: new EngineClient(recorder.transport),
    authenticator: new TokenStore([], token),
    requestLog: () => {},
    audit: () => {},
    ...ports,
  })
  afterAll(() => gateway.close())
  return { gateway, calls: recorder.calls }
}

/** A JSON POST body as other services send it. */
export const postJson = (
  body: unknown,
  role: Role | null = 'admin',
): RequestInit & { role?: Role | null } => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
  role,
})

let counter = 0
/** A container name unique to this test run. */
export const uniqueName = (prefix: string) =>
  `dgt-${prefix}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`
