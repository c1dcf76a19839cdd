/**
 * A route's gate (`scoped`, `refuseQuery` in src/routes/router.ts) on a gateway router: folded into
 * the handler after it, it still runs where its middleware ran (before the validators), answers
 * through the same error handler, and lets an audit-mode caller through.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi'
import { describe, expect, it } from 'vitest'
import type { AuditEntry } from '../../src/domain/audit.ts'
import { Guard } from '../../src/domain/guard.ts'
import { PolicySchema } from '../../src/domain/policy.ts'
import type { Principal, Scope } from '../../src/domain/principal.ts'
import { ProblemError } from '../../src/errors.ts'
import type { AppEnv } from '../../src/http/context.ts'
import { strictQuery } from '../../src/routes/common.ts'
import { refuseQuery, router, scoped } from '../../src/routes/router.ts'

const answer = { 200: { description: 'ok' } }
const listRoute = createRoute({
  method: 'get',
  path: '/v1/things',
  ...scoped('containers:read'),
  request: { query: strictQuery({ all: z.enum(['true', 'false']).optional() }) },
  responses: answer,
})
const versionRoute = createRoute({
  method: 'get',
  path: '/v1/version',
  ...scoped('system:read', { noQuery: true }),
  responses: answer,
})
const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  middleware: [refuseQuery],
  responses: answer,
})

/** The routes on `app`, behind a principal holding `scopes` under `mode`. */
function serve(app: OpenAPIHono<AppEnv>, scopes: Scope[], mode: 'enforce' | 'audit' = 'enforce') {
  const audit: AuditEntry[] = []
  const top = new OpenAPIHono<AppEnv>()
  top.use(async (c, next) => {
    const principal: Principal = {
      id: 'token:test',
      kind: 'token',
      scopes: new Set(scopes),
      policy: PolicySchema.parse({ mode }),
    }
    c.set('principal', principal)
    c.set('guard', new Guard(principal, (entry) => audit.push(entry), 'id-1', 'GET /'))
    await next()
  })
  top.onError((error, c) =>
    c.json(
      { status: error instanceof ProblemError ? error.status : 500, message: error.message },
      error instanceof ProblemError ? (error.status as 400) : 500,
    ),
  )
  app.openapi(listRoute, (c) => c.json({ query: c.req.valid('query') }, 200))
  app.openapi(versionRoute, (c) => c.json({ version: 1 }, 200))
  app.openapi(healthRoute, (c) => c.json({ status: 'ok' }, 200))
  top.route('/', app)
  return { top, audit, app }
}

async function status(top: OpenAPIHono<AppEnv>, path: string) {
  const response = await top.request(path)
  return { status: response.status, body: await response.json() }
}

describe.each([
  ['a gateway router', () => router()],
  ['a plain OpenAPIHono app', () => new OpenAPIHono<AppEnv>()],
])('route gates on %s', (_name, make) => {
  it('refuses a caller without the scope before validating its query (403, not 400)', async () => {
    const { top, audit } = serve(make(), ['system:read'])
    expect((await status(top, '/v1/things?bad=1')).status).toBe(403)
    expect((await status(top, '/v1/things?all=true')).status).toBe(403)
    expect(audit.map((entry) => [entry.decision, entry.reason])).toEqual([
      ['deny', 'missing-scope:containers:read'],
      ['deny', 'missing-scope:containers:read'],
    ])
  })

  it('validates the query of a caller with the scope', async () => {
    const { top } = serve(make(), ['containers:read'])
    expect(await status(top, '/v1/things?all=true')).toEqual({
      status: 200,
      body: { query: { all: 'true' } },
    })
    expect((await status(top, '/v1/things?bad=1')).status).toBe(400)
  })

  it('refuses any query where the operation takes none, after the scope', async () => {
    const { top } = serve(make(), ['system:read'])
    expect(await status(top, '/v1/version')).toEqual({ status: 200, body: { version: 1 } })
    expect((await status(top, '/v1/version?x=1')).status).toBe(400)
    expect((await status(top, '/healthz?x=1')).status).toBe(400)
    expect((await status(top, '/healthz')).status).toBe(200)
    const { top: stranger } = serve(make(), ['containers:read'])
    expect((await status(stranger, '/v1/version?x=1')).status).toBe(403)
  })

  it('lets an audit-mode caller through, recording what it would deny', async () => {
    const { top, audit } = serve(make(), [], 'audit')
    expect(await status(top, '/v1/version')).toEqual({ status: 200, body: { version: 1 } })
    expect(audit.map((entry) => [entry.decision, entry.reason])).toEqual([
      ['would_deny', 'missing-scope:system:read'],
    ])
  })
})

describe('a gateway router', () => {
  it('registers each gate inside the handler after it: one handler less per gated route', () => {
    const handlersOf = (app: OpenAPIHono<AppEnv>) =>
      Object.fromEntries(
        ['/v1/things', '/v1/version', '/healthz'].map((path) => [
          path,
          app.routes.filter((route) => route.path === path).length,
        ]),
      )
    // The gate, the query validator and the handler; the gate and the handler; the same.
    expect(handlersOf(serve(new OpenAPIHono<AppEnv>(), []).app)).toEqual({
      '/v1/things': 3,
      '/v1/version': 2,
      '/healthz': 2,
    })
    expect(handlersOf(serve(router(), []).app)).toEqual({
      '/v1/things': 2,
      '/v1/version': 1,
      '/healthz': 1,
    })
  })
})
