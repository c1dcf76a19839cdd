/**
 * One behavioural suite, the same assertions on every runtime: the gateway is started as a real
 * process (Node, Deno, Bun running the Node bundle, Bun's own entry, and the edge bundle served by
 * Deno and by workerd), driven over HTTP on 127.0.0.1 with `fetch`, against the real engine. Every target runs
 * every behaviour; a target skips one only for a limit of its platform, named in `limits` and in
 * the skipped test's name.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  EDGE_BUNDLE,
  EDGE_DIRECTORIES,
  workerdCommand,
  writeWorkerdConfig,
} from '../../scripts/workerd-config.mjs'
import { hashToken } from '../../src/auth/tokens.ts'
import { testEngineEnv } from '../support/engine.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { freePort } from '../support/net.ts'
import { NODE_FLAGS } from '../support/node-flags.ts'
import { readSse } from '../support/sse.ts'
import type { ParsedSseEvent } from '../support/sse-parse.ts'

const ADMIN_TOKEN = 'dgt_runtime-suite-admin-token'
const READER_TOKEN = 'dgt_runtime-suite-reader-token'
const EXEC_TOKEN = 'dgt_runtime-suite-exec-token'
const DENO = 'node_modules/.bin/deno'
const BUN = 'node_modules/.bin/bun'
/** Each test run's containers carry this label with a value of their own, to find them (and their events). */
const CASE_LABEL = 'dockgate-runtime-case'

/** The behaviours a platform may lack (each test that needs one names it). */
type Behaviour = 'gracefulShutdown'

interface Target {
  name: string
  slug: string
  /**
   * What this platform cannot do, and why: the tests that need it are skipped with the reason
   * in their name. Only true platform limits go here, never "not tried".
   */
  limits: Partial<Record<Behaviour, string>>
  /**
   * How the test knows it listens: a `"listening"` line in its output (the gateway's own log),
   * or a 200 on `/healthz` (workerd prints nothing when its socket is up).
   */
  ready: 'output' | 'probe'
  /**
   * The engine's `/events` stream: one per process, held between requests (`shared`: a server
   * that was started), or one per event stream, opened in its request and closed with it
   * (`per-stream`: the edge entry, which does no work outside a request).
   */
  eventsUpstream: 'shared' | 'per-stream'
  /** Builds what the command runs (once per run, shared by the targets that run the same build). */
  build(): void
  command(env: { port: number; configPath: string; dir: string }): {
    file: string
    args: string[]
    env: Record<string, string>
  }
}

const baseEnv = (port: number) => ({
  PATH: process.env.PATH ?? '',
  // Deno keeps its transpile cache under $HOME (or DENO_DIR); a fresh HOME would redo it each run.
  HOME: process.env.HOME ?? tmpdir(),
  ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}),
  NO_COLOR: '1',
  PORT: String(port),
  DOCKGATE_TOKEN: ADMIN_TOKEN,
})

/** Runs `fn` once per test process, however many targets ask. */
const once = (fn: () => void) => {
  let done = false
  return () => {
    if (!done) fn()
    done = true
  }
}
// What `npm start` runs: the single-file bundle of src/node.ts.
const buildNode = once(() =>
  execFileSync(process.execPath, ['scripts/build-node.mjs'], { stdio: 'inherit' }),
)
const buildDeno = once(() =>
  execFileSync(process.execPath, ['scripts/build-deno.mjs'], { stdio: 'inherit' }),
)
const buildBun = once(() =>
  execFileSync(process.execPath, ['scripts/build-bun.mjs'], { stdio: 'inherit' }),
)
const buildEdge = once(() =>
  execFileSync(process.execPath, ['scripts/build-edge.mjs'], { stdio: 'inherit' }),
)

/** The engine's plain TCP port (tcp://127.0.0.1:…): the edge transport is plain fetch. */
function engineTcpHost(target: string): string {
  const tcpHost = testEngineEnv().tcpHost
  if (!tcpHost) throw new Error(`The ${target} target needs DOCKGATE_TEST_TCP_HOST (engine.sh up)`)
  return tcpHost
}

/**
 * An edge isolate is started and ended by its platform, which tells it nothing: a Workers-style
 * `{ fetch }` module has no lifecycle hook to end its streams with `shutdown` or flush its log.
 */
const NO_SHUTDOWN_HOOK =
  'an edge isolate gets no shutdown signal: a `{ fetch }` module has no SIGTERM hook'

const TARGETS: Target[] = [
  {
    name: 'node',
    eventsUpstream: 'shared',
    slug: 'node',
    limits: {},
    ready: 'output',
    build: buildNode,
    command: ({ port, configPath }) => ({
      file: process.execPath,
      args: [...NODE_FLAGS, 'dist/dockgate.mjs'],
      env: {
        ...baseEnv(port),
        DOCKER_HOST: testEngineEnv().dockerHost,
        DOCKGATE_CONFIG: configPath,
      },
    }),
  },
  {
    name: 'deno',
    eventsUpstream: 'shared',
    slug: 'deno',
    limits: {},
    ready: 'output',
    // The bundle scripts/deno-start.sh runs while it is fresh (dist/deno.js).
    build: buildDeno,
    command: ({ port, configPath }) => ({
      // It `exec`s deno with the narrowest permissions, so the child's pid is Deno's.
      file: 'bash',
      args: ['scripts/deno-start.sh'],
      env: {
        ...baseEnv(port),
        DOCKER_HOST: testEngineEnv().dockerHost,
        DOCKGATE_CONFIG: configPath,
      },
    }),
  },
  {
    // Bun runs the Node bundle as it is (its Node compatibility: node:http, undici over the
    // engine's Unix socket), as a Hono user on Bun would run `npm start`'s file; its loader takes
    // the script compiled to Bun's bytecode (test/node/bun-bytecode.test.ts).
    name: 'bun',
    eventsUpstream: 'shared',
    slug: 'bun',
    limits: {},
    ready: 'output',
    build: buildNode,
    command: ({ port, configPath }) => ({
      file: BUN,
      args: ['dist/dockgate.mjs'],
      env: {
        ...baseEnv(port),
        DOCKER_HOST: testEngineEnv().dockerHost,
        DOCKGATE_CONFIG: configPath,
      },
    }),
  },
  {
    // The Bun entry (src/bun.ts, built by scripts/build-bun.mjs): `Bun.serve`, and Bun's own
    // `fetch` over the engine's Unix socket.
    name: 'bun entry',
    eventsUpstream: 'shared',
    slug: 'bun-entry',
    limits: {},
    ready: 'output',
    build: buildBun,
    command: ({ port, configPath }) => ({
      file: 'dist/dockgate-bun/dockgate',
      args: [],
      env: {
        ...baseEnv(port),
        DOCKER_HOST: testEngineEnv().dockerHost,
        DOCKGATE_CONFIG: configPath,
      },
    }),
  },
  {
    name: 'edge bundle on deno',
    eventsUpstream: 'per-stream',
    slug: 'edge',
    // test/deno/serve-edge.ts serves the bundle as Deno Deploy would: no signal reaches the handler.
    limits: { gracefulShutdown: NO_SHUTDOWN_HOOK },
    ready: 'output',
    build: buildEdge,
    command: ({ port, configPath }) => ({
      file: DENO,
      args: [
        'run',
        '--no-prompt',
        '--unstable-no-legacy-abort',
        '--allow-read=dist',
        '--allow-env=PORT,DOCKER_HOST,DOCKGATE_TOKEN,DOCKGATE_CONFIG_JSON',
        '--allow-net=127.0.0.1',
        'test/deno/serve-edge.ts',
      ],
      env: {
        ...baseEnv(port),
        DOCKER_HOST: engineTcpHost('edge'),
        // Bindings hold values, not paths: the config file's content.
        DOCKGATE_CONFIG_JSON: readFileSync(configPath, 'utf8'),
      },
    }),
  },
  {
    // Cloudflare's runtime, from the config scripts/workerd-config.mjs writes: the bundle as an
    // ES module, the bindings as text bindings, the /docs renderer from a disk service, fetch
    // allowed to loopback only.
    name: 'edge bundle on workerd',
    eventsUpstream: 'per-stream',
    slug: 'workerd',
    limits: { gracefulShutdown: NO_SHUTDOWN_HOOK },
    ready: 'probe',
    build: buildEdge,
    command: ({ port, configPath, dir }) => {
      const capnp = writeWorkerdConfig({
        modulePath: EDGE_BUNDLE,
        configPath: join(dir, 'workerd.capnp'),
        port,
        // The /docs renderer, read from dist/edge-assets on the first /docs request.
        directories: EDGE_DIRECTORIES,
        bindings: {
          DOCKER_HOST: engineTcpHost('workerd'),
          DOCKGATE_TOKEN: ADMIN_TOKEN,
          DOCKGATE_CONFIG_JSON: readFileSync(configPath, 'utf8'),
        },
      })
      return { ...workerdCommand(capnp), env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' } }
    },
  },
]

interface Running {
  child: ChildProcess
  url: string
  output(): string
  /** Settles when the process has exited: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const STARTUP_MS = 45_000

/** A 200 on /healthz: a target that prints nothing when it listens. */
async function answersHealth(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })
    await response.body?.cancel()
    return response.status === 200
  } catch {
    return false
  }
}

async function startTarget(target: Target, configPath: string, dir: string): Promise<Running> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const { file, args, env } = target.command({ port, configPath, dir })
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const deadline = Date.now() + STARTUP_MS
  while (
    target.ready === 'output' ? !output.includes('"listening"') : !(await answersHealth(url))
  ) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${target.name} did not start:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { child, url, output: () => output, exited }
}

/** SIGTERM, then SIGKILL when it is still there after `graceMs`. */
async function stopTarget(running: Running, graceMs = 5_000) {
  const { child } = running
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await running.exited
  clearTimeout(timer)
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Where a long text differs from the one expected, for a failure's message (not the texts). */
function difference(got: string, expected: string): string {
  let at = 0
  while (at < got.length && got[at] === expected[at]) at++
  return `${got.length} characters against ${expected.length}, first differing at ${at}: ${JSON.stringify(got.slice(at, at + 40))} against ${JSON.stringify(expected.slice(at, at + 40))}`
}

const lineEvents = (events: ParsedSseEvent[]) =>
  events.filter((e) => e.event === 'stdout' || e.event === 'stderr')
const textsOf = (events: ParsedSseEvent[]) =>
  lineEvents(events).map((e) => JSON.parse(e.data).text as string)

describe.each(TARGETS)('the gateway on $name', (target) => {
  let dir: string
  let gateway: Running
  let counter = 0
  const created: string[] = []

  const unique = (prefix: string) =>
    `dgt-rt-${target.slug}-${prefix}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`

  /** A request; the admin token unless `token` says otherwise (null: none). */
  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const { token = ADMIN_TOKEN, ...rest } = init
    const headers = new Headers(rest.headers)
    if (token) headers.set('authorization', `Bearer ${token}`)
    return fetch(`${gateway.url}${path}`, { ...rest, headers })
  }
  const json = async <T = any>(path: string, init?: RequestInit & { token?: string | null }) => {
    const response = await call(path, init)
    const text = await response.text()
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, response }
  }
  const post = (body: unknown, token: string | null = ADMIN_TOKEN) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    token,
  })

  /** Creates a container through the gateway, labelled for this run (and `caseValue`). */
  async function createContainer(
    options: { cmd: string[]; tty?: boolean; start?: boolean; caseValue?: string },
    name = unique('c'),
  ) {
    const { status, body } = await json(
      `/v1/containers${options.start === false ? '' : '?start=true'}`,
      post({
        image: testEngineEnv().image,
        name,
        cmd: options.cmd,
        tty: options.tty ?? false,
        labels: { [TEST_LABEL]: TEST_RUN, [CASE_LABEL]: options.caseValue ?? name },
      }),
    )
    expect(status, JSON.stringify(body)).toBe(201)
    created.push(body.id)
    return { id: body.id as string, name, body }
  }

  const runToExit = async (cmd: string[], tty = false) => {
    const container = await createContainer({ cmd, tty })
    const waited = await json(`/v1/containers/${container.id}/wait`, { method: 'POST' })
    expect(waited.status).toBe(200)
    return container
  }

  /** A behaviour that needs what a platform may lack: skipped there, the limit in its name. */
  const needs = (behaviour: Behaviour, name: string, fn: () => Promise<void>) => {
    const limit = target.limits[behaviour]
    return it.skipIf(limit !== undefined)(
      limit === undefined ? name : `${name} [not on ${target.name}: ${limit}]`,
      fn,
    )
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `dockgate-rt-${target.slug}-`))
    const configPath = join(dir, 'config.json')
    writeFileSync(
      configPath,
      JSON.stringify({
        tokens: [
          {
            name: 'reader',
            hash: await hashToken(READER_TOKEN),
            scopes: ['containers:read', 'logs:read'],
          },
          {
            name: 'runner',
            hash: await hashToken(EXEC_TOKEN),
            scopes: ['containers:read', 'containers:write', 'exec'],
            policy: {
              images: ['*'],
              exec: { allowed: true, user: '65534:65534', maxTimeoutSeconds: 30 },
            },
          },
        ],
      }),
      { mode: 0o600 },
    )
    target.build()
    gateway = await startTarget(target, configPath, dir)
  })

  // A failure shows what the gateway printed meanwhile (its request log, errors, warnings).
  beforeEach(({ onTestFailed }) => {
    const from = gateway?.output().length ?? 0
    onTestFailed(() => {
      const lines = gateway?.output().slice(from).trim().split('\n') ?? []
      console.error(`${target.name}: the gateway printed during the failed test (last 60 lines):
${lines.slice(-60).join('\n')}`)
    })
  })

  afterAll(async () => {
    if (gateway) {
      // Cleanup needs the gateway (for the edge bundle too); the global teardown catches the rest.
      if (gateway.child.exitCode === null && gateway.child.signalCode === null) {
        await Promise.all(
          created.map((id) =>
            call(`/v1/containers/${id}?force=true`, { method: 'DELETE' })
              .then((r) => r.body?.cancel())
              .catch(() => {}),
          ),
        )
      }
      await stopTarget(gateway)
    }
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('answers /healthz and /readyz', async () => {
    const health = await json('/healthz', { token: null })
    expect(health.status).toBe(200)
    expect(health.body).toEqual({ status: 'ok' })
    const ready = await json('/readyz', { token: null })
    expect(ready.status).toBe(200)
    expect(ready.body).toMatchObject({ status: 'ready', engineApiVersion: '1.41' })
  })

  it('serves the OpenAPI 3.1 document and the /docs page', async () => {
    const doc = await json('/openapi.json', { token: null })
    expect(doc.status).toBe(200)
    expect(doc.body.openapi).toBe('3.1.0')
    expect(doc.body.paths['/v1/containers']).toBeDefined()
    const docs = await call('/docs', { token: null })
    expect(docs.status).toBe(200)
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/)
    // The renderer comes from the gateway on every runtime: embedded, never from elsewhere.
    const renderer = /<script src="(\/docs\/assets\/[^"]+)"/.exec(await docs.text())?.[1]
    expect(renderer).toMatch(/^\/docs\/assets\/api-reference\.[0-9a-f]{16}\.js$/)
    const script = await call(renderer!, { token: null })
    expect(script.status).toBe(200)
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(await script.text()).toContain('createApiReference')
  })

  it('reports the engine version with a token', async () => {
    const { status, body } = await json('/v1/system/version')
    expect(status).toBe(200)
    expect(body).toMatchObject({
      gateway: { version: expect.any(String) },
      engine: { apiVersion: '1.41' },
      negotiatedApiVersion: '1.41',
    })
  })

  it('answers 401 problems without a token and with a bad one', async () => {
    const none = await json('/v1/system/version', { token: null })
    expect(none.status).toBe(401)
    expect(none.response.headers.get('content-type')).toBe('application/problem+json')
    expect(none.response.headers.get('www-authenticate')).toMatch(/^Bearer realm=/)
    expect(none.body).toMatchObject({
      type: 'urn:dockgate:problem:unauthorized',
      status: 401,
      instance: '/v1/system/version',
    })
    const bad = await json('/v1/system/version', { token: 'dgt_not-a-token-anyone-has' })
    expect(bad.status).toBe(401)
    expect(bad.response.headers.get('content-type')).toBe('application/problem+json')
    expect(bad.response.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(bad.body.type).toBe('urn:dockgate:problem:unauthorized')
  })

  it('answers 403 when a token from the config file lacks the scope', async () => {
    const list = await json('/v1/containers', { token: READER_TOKEN })
    expect(list.status).toBe(200)
    const write = await json(
      '/v1/containers',
      post({ image: testEngineEnv().image, cmd: ['true'] }, READER_TOKEN),
    )
    expect(write.status).toBe(403)
    expect(write.response.headers.get('content-type')).toBe('application/problem+json')
    expect(write.response.headers.get('www-authenticate')).toContain('scope="containers:write"')
    expect(write.body).toMatchObject({ type: 'urn:dockgate:problem:forbidden', status: 403 })
  })

  // Before any other stream is opened: one that an earlier test left (its hang-up not seen yet)
  // would move the counts meanwhile.
  it('holds the engine’s events stream as its runtime should once a client leaves', async () => {
    const gauges = async () => {
      const metrics = await call('/metrics')
      expect(metrics.status).toBe(200)
      const text = await metrics.text()
      const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])
      return {
        upstream: value('dockgate_events_upstream_connected'),
        subscribers: value('dockgate_events_subscribers'),
      }
    }
    const before = await gauges()
    const caseValue = unique('held')
    const response = await call(
      `/v1/events?${new URLSearchParams([['label', `${CASE_LABEL}=${caseValue}`]])}`,
    )
    expect(response.status).toBe(200)
    const reader = readSse(response)
    const open = await gauges()
    expect(open.upstream).toBe(1)
    expect(open.subscribers).toBe(before.subscribers + 1)
    await reader.close()
    // workerd learns that a client left only when it next writes to it (a heartbeat, 15 s, at the
    // latest): an event for this stream makes that write now, on every runtime alike.
    await createContainer({ cmd: ['true'], start: false, caseValue })
    let after = await gauges()
    for (let i = 0; i < 60 && after.subscribers !== before.subscribers; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      after = await gauges()
    }
    expect(after.subscribers).toBe(before.subscribers)
    // A server keeps its one upstream for the next client. On the edge each stream has a hub of
    // its own (one subscriber each): this stream's went with it, and an upstream is left only for
    // streams still open, such as an earlier test's whose hang-up workerd has not seen yet (it
    // sees one at the next write).
    expect(after.upstream).toBe(target.eventsUpstream === 'shared' || after.subscribers > 0 ? 1 : 0)
  })

  it('creates and starts, inspects by name, lists by label, stops and deletes a container', async () => {
    const { id, name, body } = await createContainer({ cmd: ['sleep', '30'] })
    expect(body).toMatchObject({ id, name, state: { status: 'running', running: true } })
    expect(body.config.labels).toMatchObject({ [TEST_LABEL]: TEST_RUN })

    const inspected = await json(`/v1/containers/${name}`)
    expect(inspected.status).toBe(200)
    expect(inspected.body.id).toBe(id)

    const listed = await json(
      `/v1/containers?${new URLSearchParams([
        ['label', `${TEST_LABEL}=${TEST_RUN}`],
        ['label', `${CASE_LABEL}=${name}`],
      ])}`,
    )
    expect(listed.status).toBe(200)
    expect(listed.body.containers.map((c: { id: string }) => c.id)).toEqual([id])

    const stopped = await json(`/v1/containers/${id}/stop?timeout=1`, { method: 'POST' })
    expect(stopped.status).toBe(200)
    expect(stopped.body).toEqual({ id, state: 'exited', changed: true })
    const again = await json(`/v1/containers/${id}/stop?timeout=1`, { method: 'POST' })
    expect(again.body).toEqual({ id, state: 'exited', changed: false })

    const removed = await call(`/v1/containers/${id}`, { method: 'DELETE' })
    expect(removed.status).toBe(204)
    expect(await removed.text()).toBe('')
    const gone = await json(`/v1/containers/${id}`)
    expect(gone.status).toBe(404)
    expect(gone.response.headers.get('content-type')).toBe('application/problem+json')
    expect(gone.body.type).toBe('urn:dockgate:problem:not-found')
  })

  it('runs an exec: its output whole and in order, as JSON and as server-sent events', async () => {
    // Its own container: an exec runs only in the caller's
    const made = await json(
      '/v1/containers?start=true',
      post(
        {
          image: testEngineEnv().image,
          name: unique('exec'),
          cmd: ['sleep', '60'],
          labels: { [TEST_LABEL]: TEST_RUN },
        },
        EXEC_TOKEN,
      ),
    )
    expect(made.status, JSON.stringify(made.body)).toBe(201)
    const id = made.body.id as string
    created.push(id)
    // Many of the engine's frames, over many reads of its connection
    const cmd = ['sh', '-c', 'seq 1 40000; echo done >&2']
    const expected = Array.from({ length: 40_000 }, (_, i) => `${i + 1}\n`).join('')
    const answered = await json(`/v1/containers/${id}/exec`, post({ cmd }, EXEC_TOKEN))
    expect(answered.status, JSON.stringify(answered.body)).toBe(200)
    expect(answered.body).toMatchObject({ exitCode: 0, truncated: false, stderr: 'done\n' })
    expect(answered.body.stdout === expected, difference(answered.body.stdout, expected)).toBe(true)

    const streamed = await call(`/v1/containers/${id}/exec`, {
      ...post({ cmd }, EXEC_TOKEN),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(streamed.status).toBe(200)
    const events = await readSse(streamed).until('end', 30_000)
    const text = (stream: string) =>
      events
        .filter((e) => e.event === stream)
        .map((e) => JSON.parse(e.data).text as string)
        .join('')
    expect(text('stdout') === expected, difference(text('stdout'), expected)).toBe(true)
    expect(text('stderr')).toBe('done\n')
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ exitCode: 0 })
  })

  it('demultiplexes logs into stdout and stderr lines', async () => {
    const { id } = await runToExit(['sh', '-c', 'echo out; echo err >&2'])
    const { status, body } = await json(`/v1/containers/${id}/logs`)
    expect(status).toBe(200)
    expect(body.truncated).toBe(false)
    // The engine copies stdout and stderr separately: their relative order is not guaranteed.
    const pairs = body.lines.map((l: { stream: string; text: string }) => [l.stream, l.text])
    expect(pairs).toHaveLength(2)
    expect(pairs).toEqual(
      expect.arrayContaining([
        ['stdout', 'out'],
        ['stderr', 'err'],
      ]),
    )
    for (const line of body.lines)
      expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
  })

  it('reads a TTY container’s lines without carriage returns', async () => {
    const { id } = await runToExit(['sh', '-c', 'echo tty1; echo tty2 >&2'], true)
    const { status, body } = await json(`/v1/containers/${id}/logs`)
    expect(status).toBe(200)
    expect(body.lines.map((l: { stream: string; text: string }) => [l.stream, l.text])).toEqual([
      ['stdout', 'tty1'],
      ['stdout', 'tty2'],
    ])
  })

  it('streams logs as server-sent events that resume with Last-Event-ID, then `end`', async () => {
    const { id } = await createContainer({ cmd: ['seq', '1', '50'] })
    const first = await call(`/v1/containers/${id}/logs/stream`)
    expect(first.status).toBe(200)
    expect(first.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = readSse(first)
    const head = lineEvents(await reader.take(5))
    expect(head).toHaveLength(5)
    await reader.close()

    const lastId = head.at(-1)!.id!
    const resumed = await call(`/v1/containers/${id}/logs/stream`, {
      headers: { 'last-event-id': lastId },
    })
    expect(resumed.status).toBe(200)
    const rest = await readSse(resumed).until('end')
    const end = rest.at(-1)!
    expect(end.event).toBe('end')
    expect(JSON.parse(end.data)).toEqual({ exitCode: 0, state: 'exited' })

    const all = [...textsOf(head), ...textsOf(rest)]
    expect(all).toEqual(Array.from({ length: 50 }, (_, i) => String(i + 1)))
    expect(new Set(all).size).toBe(50)
  })

  it('streams a long log whole and in order, in batches of many lines', async () => {
    // Over 600 KB: batches up to 64 KiB, a slab written over once the kernel took a batch
    const { id } = await createContainer({ cmd: ['seq', '1', '100000'] })
    const streamed = await call(`/v1/containers/${id}/logs/stream`)
    expect(streamed.status).toBe(200)
    const events = await readSse(streamed).until('end', 30_000)
    const texts = textsOf(events)
    expect(texts.length).toBe(100_000)
    expect(texts.join(',') === Array.from({ length: 100_000 }, (_, i) => i + 1).join(',')).toBe(
      true,
    )
  })

  it('streams engine events that resume exactly after Last-Event-ID', async () => {
    const caseValue = unique('ev')
    const path = `/v1/events?${new URLSearchParams([
      ['type', 'container'],
      ['label', `${CASE_LABEL}=${caseValue}`],
    ])}`
    const response = await call(path)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const live = readSse(response)

    const a = await createContainer({ cmd: ['true'], start: false, caseValue })
    const [createA] = await live.take(1)
    expect(createA!.event).toBe('container')
    expect(JSON.parse(createA!.data)).toMatchObject({ action: 'create', actor: { id: a.id } })
    expect(createA!.id).toMatch(/^\d{19}$/)
    await live.close()

    const b = await createContainer({ cmd: ['sleep', '30'], caseValue })
    const resumed = await call(path, { headers: { 'last-event-id': createA!.id! } })
    expect(resumed.status).toBe(200)
    const reader = readSse(resumed)
    const after = await reader.take(2)
    expect(
      after.map((e) => [e.event, JSON.parse(e.data).action, JSON.parse(e.data).actor.id]),
    ).toEqual([
      ['container', 'create', b.id],
      ['container', 'start', b.id],
    ])
    for (const event of after) expect(BigInt(event.id!)).toBeGreaterThan(BigInt(createA!.id!))
    // Nothing else happened to these containers: nothing more arrives (no repeat of A's create).
    await expect(reader.next(500)).rejects.toThrow(/no event within/)
    await reader.close()
  })

  it('survives a client that hangs up on a logs stream', async () => {
    const { id } = await createContainer({
      cmd: ['sh', '-c', 'while true; do echo tick; sleep 0.05; done'],
    })
    const errorsBefore = gateway.output().split('"level":"error"').length
    for (let round = 0; round < 3; round++) {
      const response = await call(`/v1/containers/${id}/logs/stream?tail=0`)
      expect(response.status).toBe(200)
      const reader = readSse(response)
      expect(textsOf(await reader.take(3))).toEqual(['tick', 'tick', 'tick'])
      await reader.close()
    }
    const ready = await call('/readyz', { token: null })
    expect(ready.status).toBe(200)
    await ready.body?.cancel()
    const inspected = await json(`/v1/containers/${id}`)
    expect(inspected.status).toBe(200)
    expect(inspected.body.state.running).toBe(true)
    expect(gateway.child.exitCode).toBeNull()
    expect(gateway.output().split('"level":"error"').length).toBe(errorsBefore)
  })

  // Last: it ends the gateway.
  needs(
    'gracefulShutdown',
    'ends open event streams with `shutdown` and exits 0 on SIGTERM',
    async () => {
      const response = await call(
        `/v1/events?${new URLSearchParams([['label', `${CASE_LABEL}=${unique('bye')}`]])}`,
      )
      expect(response.status).toBe(200)
      const reader = readSse(response)
      // Remove this target's containers first: the gateway is gone afterwards.
      for (const id of created.splice(0)) {
        const removed = await call(`/v1/containers/${id}?force=true`, { method: 'DELETE' })
        expect([204, 404]).toContain(removed.status)
      }
      const lastRequest = await call('/v1/system/version')
      expect(lastRequest.status).toBe(200)
      const requestId = lastRequest.headers.get('x-request-id')
      await lastRequest.body?.cancel()
      gateway.child.kill('SIGTERM')
      const events = await reader.until('shutdown', 5_000)
      expect(events.at(-1)?.event).toBe('shutdown')
      expect(await reader.next(5_000)).toBeUndefined()
      expect(await within(gateway.exited, 8_000, `${target.name} exit`)).toEqual({
        code: 0,
        signal: null,
      })
      expect(gateway.output()).toContain('shutting down')
      // The request log, batched, still has the request made just before the signal
      const logged = gateway
        .output()
        .split('\n')
        .filter((text) => text.startsWith('{"time"') && text.includes('"msg":"request"'))
        .map((text) => JSON.parse(text))
      expect(logged.find((entry) => entry.requestId === requestId)).toMatchObject({
        path: '/v1/system/version',
        status: 200,
      })
    },
  )
})
