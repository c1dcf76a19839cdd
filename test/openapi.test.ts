import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { SCOPES, type Scope } from '../src/domain/principal.ts'
import { openApiText } from '../src/openapi.ts'
import { type TestGateway, testGateway } from './support/gateway.ts'
import { OPERATIONS, scopeOf } from './support/openapi.ts'

let gw: TestGateway
type Operation = {
  operationId?: string
  tags?: string[]
  security?: unknown[]
  responses: Record<string, unknown>
}

/** A client name for a scope (token characters only). */
const named = (prefix: string, scope: string) => `${prefix}-${scope.replace(':', '-')}`

/** A policy that allows exec, so that only the scope decides (the default policy refuses exec). */
const EXEC_ALLOWED = { exec: { allowed: true, user: '65534:65534', maxTimeoutSeconds: 60 } }

/**
 * For each scope, a client holding every other one (admin aside), and one holding only it
 * (`admin` too: `/metrics` needs it).
 */
const SCOPED_CLIENTS = Object.fromEntries(
  SCOPES.flatMap((scope) => [
    [
      named('without', scope),
      { scopes: SCOPES.filter((s) => s !== scope && s !== 'admin'), policy: EXEC_ALLOWED },
    ],
    [named('only', scope), { scopes: [scope], policy: EXEC_ALLOWED }],
  ]),
) as Record<string, { scopes: Scope[]; policy: typeof EXEC_ALLOWED }>

beforeAll(async () => {
  gw = await testGateway({ clients: SCOPED_CLIENTS })
})

const PUBLIC = new Set(['getHealth', 'getReadiness'])
/** Authenticated operations that never reach the engine (on any engine's path). */
const GATEWAY_ONLY = new Set(['createStreamTicket', 'createStreamTicketOnEngine', 'getMetrics'])

describe('the OpenAPI document', () => {
  it('is served live as OpenAPI 3.1 and equals the committed openapi/openapi.json', async () => {
    const { status, body } = await gw.json('/openapi.json', { role: null })
    expect(status).toBe(200)
    expect(body.openapi).toBe('3.1.0')
    const text = await openApiText()
    expect(`${JSON.stringify(body, null, 2)}\n`).toBe(text)
    expect(readFileSync('openapi/openapi.json', 'utf8')).toBe(text)
  })

  it('comes out the same when requests built route groups first, out of order', async () => {
    // A fresh gateway: its groups are built on their first request (http/lazy-routes.ts).
    const fresh = await testGateway()
    // The first request a group sees can be refused by its validators, as later ones are.
    const refused = await fresh.json('/v1/images?bogus=1')
    expect(refused.status).toBe(400)
    expect(refused.body.invalidParams).toEqual([
      { name: 'query.bogus', reason: 'unknown parameter "bogus"' },
    ])
    expect((await fresh.json('/v1/containers/no-such-container-here/stats')).status).toBe(404)
    expect((await fresh.json('/v1/system/version')).status).toBe(200)
    const { status, body } = await fresh.json('/openapi.json', { role: null })
    expect(status).toBe(200)
    expect(`${JSON.stringify(body, null, 2)}\n`).toBe(readFileSync('openapi/openapi.json', 'utf8'))
  })

  it('gives every operation an id, tags, security and its problem responses', async () => {
    const { body } = await gw.json('/openapi.json', { role: null })
    const operations = Object.values(
      body.paths as Record<string, Record<string, Operation>>,
    ).flatMap((item) => Object.values(item))
    expect(operations.length).toBeGreaterThanOrEqual(14)
    const ids = operations.map((op) => op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const op of operations) {
      expect(op.operationId).toMatch(/^[a-z][A-Za-z]+$/)
      expect(op.tags?.length).toBeGreaterThan(0)
      if (PUBLIC.has(op.operationId!)) {
        expect(op.security).toEqual([])
        continue
      }
      // The scope it needs (see the next test), or any valid credential for a stream ticket.
      const scopes = op.operationId!.startsWith('createStreamTicket') ? [] : [expect.any(String)]
      expect(op.security, op.operationId).toEqual([{ Bearer: scopes }])
      const statuses = GATEWAY_ONLY.has(op.operationId!)
        ? ['401', '403']
        : ['401', '403', '502', '503']
      for (const status of statuses) {
        expect(op.responses[status], `${op.operationId} ${status}`).toMatchObject({
          content: {
            'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
          },
        })
      }
    }
    expect(body.components.securitySchemes.Bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
  })

  it('names the scope each operation needs, the one the server enforces', async () => {
    const scoped = OPERATIONS.filter((op) => scopeOf(op) !== undefined)
    expect(scoped.length).toBeGreaterThanOrEqual(17)
    for (const op of scoped) {
      const scope = scopeOf(op)!
      const path = op.path
        .replace('{engine}', 'default')
        .replace('{id}', 'no-such-container')
        .replace('{ref}', 'no-such-image')
      const send = async (role: string) => {
        const response = await gw.call(path, {
          method: op.method,
          role,
          signal: AbortSignal.timeout(10_000),
        })
        await response.body?.cancel()
        return response
      }
      const without = await send(named('without', scope))
      expect(without.status, `${op.operationId} without ${scope}`).toBe(403)
      expect(without.headers.get('www-authenticate')).toContain(`scope="${scope}"`)
      const only = await send(named('only', scope))
      expect(only.status, `${op.operationId} with only ${scope}`).not.toBe(403)
    }
  })
})
