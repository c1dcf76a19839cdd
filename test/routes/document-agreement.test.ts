/**
 * The OpenAPI document and the server agree: what the document allows the server takes, what
 * it refuses the server answers 400 to, and no query parameter is ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { direct, engineContainerIds, engineInspect, testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import {
  DOCUMENT,
  type JsonSchema,
  OPERATIONS,
  operation,
  queryValueValidates,
  validates,
} from '../support/openapi.ts'

let gw: TestGateway
/** A container that exists and is not running: kill answers 409 for a signal the engine knows. */
let idle: { id: string; name: string }
const PROBE = `agree-${process.pid}`

beforeAll(async () => {
  gw = await testGateway({
    settings: { rateLimitPerSecond: 1e6, rateLimitBurst: 1e6, maxStreamsPerPrincipal: 1e6 },
  })
  const name = uniqueName('idle')
  const created = await direct(`/containers/create?name=${name}`, {
    method: 'POST',
    body: {
      Image: testEngineEnv().image,
      Cmd: ['true'],
      Labels: { [TEST_LABEL]: TEST_RUN, probe: PROBE },
      HostConfig: { NetworkMode: 'none' },
    },
  })
  idle = { id: (created.json() as { Id: string }).Id, name }
})

afterAll(async () => {
  for (const id of await engineContainerIds(`probe=${PROBE}`)) {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
})

const param = (operationId: string, name: string) => {
  const found = operation(operationId).parameters.find((p) => p.name === name)
  if (!found) throw new Error(`${operationId} has no parameter ${name}`)
  return found.schema
}

const createBody = operation('createContainer').requestBody!.content['application/json']!.schema

/** Every `pattern` in the document, wherever it is. */
function patterns(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) patterns(item, found)
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'pattern' && typeof value === 'string') found.push(value)
      else patterns(value, found)
    }
  }
  return found
}

describe('query values', () => {
  it.each([
    ['getContainerLogs', 'since', '', false],
    ['getContainerLogs', 'until', '', false],
    ['getContainerLogs', 'since', '10m', true],
    ['streamEvents', 'since', '', false],
    ['stopContainer', 'timeout', 'null', false],
    ['stopContainer', 'timeout', '', false],
    ['stopContainer', 'timeout', ' 5', false],
    ['stopContainer', 'timeout', '0', true],
    ['listContainers', 'limit', '1e2', false],
    ['killContainer', 'signal', 'SIGFOO', false],
    ['killContainer', 'signal', 'BOGUS', false],
    ['killContainer', 'signal', '32', false],
    ['killContainer', 'signal', '65', false],
    ['killContainer', 'signal', 'sigterm', false],
    ['killContainer', 'signal', 'SIGTERM', true],
    ['killContainer', 'signal', 'HUP', true],
    ['killContainer', 'signal', 'RTMIN+15', true],
    ['killContainer', 'signal', '64', true],
  ] as const)('%s ?%s=%j: the document and the server agree (%s)', async (id, name, value, ok) => {
    expect(queryValueValidates(param(id, name), value), 'the document').toBe(ok)
    const op = operation(id)
    const path = op.path.replace('{engine}', 'default').replace('{id}', idle.name)
    const answer = await gw.call(`${path}?${name}=${encodeURIComponent(value)}`, {
      method: op.method,
      signal: AbortSignal.timeout(10_000),
    })
    await answer.body?.cancel()
    if (ok) expect(answer.status, 'the server').not.toBe(400)
    else expect(answer.status, 'the server').toBe(400)
  })

  it('lists every signal the engine knows, and the engine knows each one it lists', async () => {
    const signals = (param('killContainer', 'signal') as { enum: string[] }).enum
    expect(signals).toEqual(expect.arrayContaining(['SIGKILL', 'KILL', '9', 'RTMAX-14']))
    for (const signal of signals) {
      // The container is not running: a signal the engine knows answers 409, one it does not 400.
      const answer = await gw.call(
        `/v1/containers/${idle.id}/kill?signal=${encodeURIComponent(signal)}`,
        {
          method: 'POST',
        },
      )
      expect(answer.status, signal).toBe(409)
    }
    expect((await engineInspect(idle.id))?.State.Status).toBe('created')
  })

  it('writes NUL in patterns as \\x00, which every regex dialect reads', () => {
    const all = patterns(DOCUMENT)
    expect(all.length).toBeGreaterThan(10)
    for (const pattern of all) {
      expect(pattern).not.toContain('\\0')
      expect(() => new RegExp(pattern, 'u'), pattern).not.toThrow()
    }
  })
})

describe('unknown query parameters', () => {
  it('are refused with 400 on every operation, naming the parameter', async () => {
    for (const op of OPERATIONS) {
      const path = op.path
        .replace('{engine}', 'default')
        .replace('{id}', idle.name)
        .replace('{ref}', 'busybox')
      const body = op.requestBody ? JSON.stringify({}) : undefined
      const answer = await gw.call(`${path}?forse=true`, {
        method: op.method,
        headers: body ? { 'content-type': 'application/json' } : undefined,
        body,
        signal: AbortSignal.timeout(10_000),
      })
      const context = `${op.method} ${op.path}`
      expect(answer.status, context).toBe(400)
      expect(answer.headers.get('content-type'), context).toBe('application/problem+json')
      expect((await answer.json()).invalidParams, context).toContainEqual({
        name: 'query.forse',
        reason: 'unknown parameter "forse"',
      })
    }
  })

  it('never do the default instead: DELETE ?forse=true removes nothing', async () => {
    const name = uniqueName('forse')
    const created = await direct(`/containers/create?name=${name}`, {
      method: 'POST',
      body: {
        Image: testEngineEnv().image,
        Cmd: ['sleep', '60'],
        Labels: { [TEST_LABEL]: TEST_RUN, probe: PROBE },
        HostConfig: { NetworkMode: 'none' },
      },
    })
    const id = (created.json() as { Id: string }).Id
    await direct(`/containers/${id}/start`, { method: 'POST' })
    const misspelt = await gw.call(`/v1/containers/${name}?forse=true`, { method: 'DELETE' })
    expect(misspelt.status).toBe(400)
    expect((await engineInspect(id))?.State.Running).toBe(true)
    expect((await gw.call(`/v1/containers/${name}?force=true`, { method: 'DELETE' })).status).toBe(
      204,
    )
  })

  it('still take a ticket on event streams (a bearer token wins over it)', async () => {
    for (const path of [
      `/v1/containers/missing-${PROBE}/logs/stream`,
      `/v1/containers/missing-${PROBE}/stats/stream`,
    ]) {
      const answer = await gw.call(`${path}?ticket=dgk_unused`)
      expect(answer.status, path).toBe(404)
    }
  })
})

describe('create bodies', () => {
  const send = (text: string) =>
    gw.call('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: text,
    })
  const body = (extra: string) =>
    `{"image":${JSON.stringify(testEngineEnv().image)},"cmd":["true"],${extra}}`

  it.each([
    ['labels', `"labels":{"__proto__":"x","${TEST_LABEL}":"${TEST_RUN}","probe":"${PROBE}"}`],
    ['env', `"env":{"__proto__":"x"},"labels":{"${TEST_LABEL}":"${TEST_RUN}","probe":"${PROBE}"}`],
  ])('refuse a __proto__ key in %s with 400, as the document does', async (field, extra) => {
    const text = body(extra)
    expect(validates(createBody, JSON.parse(text)), 'the document').toBe(false)
    const before = await engineContainerIds(`probe=${PROBE}`)
    const answer = await send(text)
    expect(answer.status).toBe(400)
    expect((await answer.json()).invalidParams).toContainEqual(
      expect.objectContaining({ name: `json.${field}.__proto__` }),
    )
    expect(await engineContainerIds(`probe=${PROBE}`)).toEqual(before)
  })

  it.each([
    ['a reserved label', { labels: { 'dockgate.owner': 'someone' } }],
    ['a label key with a space', { labels: { 'a b': 'x' } }],
    ['an env key with =', { env: { 'A=B': 'x' } }],
    ['an env key with NUL', { env: { 'A\u0000B': 'x' } }],
  ])('refuse %s, as the document does', async (_what, extra) => {
    const value = { image: testEngineEnv().image, cmd: ['true'], ...extra }
    expect(validates(createBody, value), 'the document').toBe(false)
    expect((await send(JSON.stringify(value))).status).toBe(400)
  })

  it('sets no string maximum that the 64 KiB body limit makes unreachable', () => {
    const limit = 64 * 1024
    const walk = (schema: JsonSchema, at: string): string[] => {
      if (schema.$ref) return walk(DOCUMENT.components.schemas[schema.$ref.split('/').pop()]!, at)
      const found: string[] = []
      if (schema.maxLength) {
        // The field alone at its maximum, in ASCII, in a body with the one required field.
        const bytes = JSON.stringify({ image: 'busybox', x: 'a'.repeat(schema.maxLength) }).length
        if (bytes > limit) found.push(`${at} (${schema.maxLength})`)
      }
      for (const [key, sub] of Object.entries(schema.properties ?? {})) {
        found.push(...walk(sub as JsonSchema, `${at}.${key}`))
      }
      if (schema.items) found.push(...walk(schema.items, `${at}[]`))
      if (typeof schema.additionalProperties === 'object') {
        found.push(...walk(schema.additionalProperties, `${at}.*`))
      }
      return found
    }
    expect(walk(createBody, 'body')).toEqual([])
  })
})
