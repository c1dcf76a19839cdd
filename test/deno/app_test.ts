/**
 * The app built in-process on Deno (`createApp` with the Deno transport and a `TokenStore`),
 * against the real engine: `deno task test` (scripts/deno-test.sh brings the engine up and runs
 * this with minimal permissions). Nothing is downloaded, so the checks are written by hand.
 */
import { createApp } from '../../src/app.ts'
import { hashToken, TokenStore } from '../../src/auth/tokens.ts'
import { EngineClient } from '../../src/engine/client.ts'
import { createDenoTransport } from '../../src/transport/deno.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'

const TOKEN = 'dgt_deno-app-test-admin'
/** The label every test container carries (test/support/labels.ts), with this run's value. */
const TEST_LABEL = 'dockgate-test'
const TEST_RUN = Deno.env.get('DOCKGATE_TEST_RUN') ?? `deno-${Deno.pid}-${Date.now().toString(36)}`
const IMAGE = Deno.env.get('DOCKGATE_FIXTURE_IMAGE') ?? 'dockgate-fixture:busybox'

/** A parsed JSON answer, read field by field in the checks. */
// deno-lint-ignore no-explicit-any
type Json = any

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message)
}

function assertEquals(actual: unknown, expected: unknown, what: string) {
  const a = JSON.stringify(actual)
  const e = JSON.stringify(expected)
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`)
}

Deno.test('the app on Deno, in-process, against the real engine', async (t) => {
  const env = Object.fromEntries(
    ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_TLS', 'DOCKER_CERT_PATH', 'HOME'].map((key) => [
      key,
      Deno.env.get(key),
    ]),
  )
  assert(env.DOCKER_HOST, 'DOCKER_HOST is not set: run scripts/deno-test.sh (deno task test)')
  const transport = createDenoTransport(engineTargetFromEnv(env))
  const gateway = createApp({
    engine: new EngineClient(transport),
    authenticator: new TokenStore([
      { name: 'admin', hash: await hashToken(TOKEN), scopes: ['admin'] },
    ]),
    audit: () => {},
    requestLog: () => {},
    logError: (message, error) => console.error(message, error),
  })
  // Follows the engine (the container read model) until closed below.
  gateway.start()
  const { app } = gateway
  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const { token = TOKEN, ...rest } = init
    const headers = new Headers(rest.headers)
    if (token) headers.set('authorization', `Bearer ${token}`)
    return Promise.resolve(app.request(path, { ...rest, headers }))
  }
  const json = async (
    path: string,
    init?: RequestInit & { token?: string | null },
  ): Promise<{ status: number; body: Json }> => {
    const response = await call(path, init)
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }

  try {
    await t.step('/readyz answers 200 when the engine answers', async () => {
      const { status, body } = await json('/readyz', { token: null })
      assertEquals(status, 200, '/readyz status')
      assertEquals(body.status, 'ready', '/readyz status field')
    })

    await t.step('/v1/system/version: 200 with a token, 401 without', async () => {
      const withToken = await json('/v1/system/version')
      assertEquals(withToken.status, 200, 'version with a token')
      assertEquals(withToken.body.engine.apiVersion, '1.41', 'engine API version')
      const response = await call('/v1/system/version', { token: null })
      assertEquals(response.status, 401, 'version without a token')
      assertEquals(
        response.headers.get('content-type'),
        'application/problem+json',
        'content type of the 401',
      )
      assert(response.headers.get('www-authenticate'), '401 without WWW-Authenticate')
      await response.body?.cancel()
    })

    await t.step('demultiplexes the logs of a container it creates, then removes it', async () => {
      const name = `dgt-deno-app-${Deno.pid}-${Date.now().toString(36)}`
      const created = await json('/v1/containers?start=true', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          image: IMAGE,
          name,
          cmd: ['sh', '-c', 'echo out; echo err >&2'],
          labels: { [TEST_LABEL]: TEST_RUN },
        }),
      })
      assertEquals(created.status, 201, `create (${JSON.stringify(created.body)})`)
      const id: string = created.body.id
      try {
        const waited = await json(`/v1/containers/${id}/wait`, { method: 'POST' })
        assertEquals(waited.body, { exitCode: 0 }, 'wait')
        const logs = await json(`/v1/containers/${id}/logs`)
        assertEquals(logs.status, 200, 'logs status')
        const lines: { stream: string; text: string }[] = logs.body.lines
        // stdout and stderr are copied separately by the engine: compare each stream on its own.
        const of = (stream: string) => lines.filter((l) => l.stream === stream).map((l) => l.text)
        assertEquals(lines.length, 2, 'number of log lines')
        assertEquals(of('stdout'), ['out'], 'stdout lines')
        assertEquals(of('stderr'), ['err'], 'stderr lines')
      } finally {
        const removed = await call(`/v1/containers/${id}?force=true`, { method: 'DELETE' })
        await removed.body?.cancel()
        assertEquals(removed.status, 204, 'delete')
      }
      const gone = await json(`/v1/containers/${id}`)
      assertEquals(gone.status, 404, 'inspect after delete')
    })
  } finally {
    gateway.close()
    await transport.close()
  }
})
