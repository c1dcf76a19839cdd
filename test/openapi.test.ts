import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { openApiText } from '../src/openapi.ts'
import { type TestGateway, testGateway } from './support/gateway.ts'

let gw: TestGateway
type Operation = {
  operationId?: string
  tags?: string[]
  security?: unknown[]
  responses: Record<string, unknown>
}

beforeAll(async () => {
  gw = await testGateway()
})

const PUBLIC = new Set(['getHealth', 'getReadiness'])
/** Authenticated operations that never reach the engine. */
const GATEWAY_ONLY = new Set(['createStreamTicket', 'getMetrics'])

describe('the OpenAPI document', () => {
  it('is served live as OpenAPI 3.1 and equals the committed openapi/openapi.json', async () => {
    const { status, body } = await gw.json('/openapi.json', { role: null })
    expect(status).toBe(200)
    expect(body.openapi).toBe('3.1.0')
    expect(`${JSON.stringify(body, null, 2)}\n`).toBe(openApiText())
    expect(readFileSync('openapi/openapi.json', 'utf8')).toBe(openApiText())
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
      expect(op.security, op.operationId).toEqual([{ Bearer: [] }])
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
})
