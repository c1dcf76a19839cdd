import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import type { AppEnv } from '../../src/http/context.ts'
import type { RequestIdWriter } from '../../src/http/request-id.ts'
import { frontOnly } from '../support/front.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function appWith(writer?: RequestIdWriter) {
  const app = new Hono<AppEnv>()
  app.use(frontOnly({ writeRequestId: writer }))
  app.get('/', (c) => c.text(c.get('requestId')))
  return app
}

async function idsOf(app: Hono<AppEnv>, offered?: string) {
  const response = await app.request('/', {
    headers: offered === undefined ? {} : { 'x-request-id': offered },
  })
  return { header: response.headers.get('x-request-id'), variable: await response.text() }
}

describe('request ids', () => {
  it('keeps a plain id the caller chose, up to 255 characters', async () => {
    const app = appWith()
    for (const offered of ['trace-123', 'a_b=c', 'x'.repeat(255)]) {
      expect(await idsOf(app, offered)).toEqual({ header: offered, variable: offered })
    }
  })

  it('makes a new UUID when there is none, or it is empty, long or not plain', async () => {
    const app = appWith()
    for (const offered of [undefined, '', 'x'.repeat(256), 'abc<script>', 'a b', 'a.b', 'é']) {
      const { header, variable } = await idsOf(app, offered)
      expect(header).toMatch(UUID)
      expect(variable).toBe(header)
    }
  })

  it('hands the id to the writer it is given instead of the response headers', async () => {
    const written: string[] = []
    const app = appWith((_c, id) => written.push(id))
    const { header, variable } = await idsOf(app, 'given-1')
    expect(header).toBeNull()
    expect(variable).toBe('given-1')
    expect(written).toEqual(['given-1'])
  })
})
