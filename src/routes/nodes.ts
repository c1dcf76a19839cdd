/**
 * @module `GET /v1/nodes`: the Swarm's nodes, read-only (admin or `nodes:read`).
 */
import { createRoute } from '@hono/zod-openapi'
import { listNodes } from '../engine/services.ts'
import { engineScope } from '../http/engines.ts'
import { ENGINE_PROBLEMS, problems, router, scoped } from './common.ts'
import { NodeListSchema } from './services.schemas.ts'
import { toNode } from './services.view.ts'

const listRoute = createRoute({
  method: 'get',
  path: '/v1/nodes',
  operationId: 'listNodes',
  tags: ['services'],
  summary: 'List the Swarm’s nodes',
  description: 'Every node of the swarm, with its role, availability and state. Read-only.',
  ...scoped('nodes:read', { noQuery: true }),
  responses: {
    200: {
      description: 'The nodes',
      content: { 'application/json': { schema: NodeListSchema } },
    },
    ...problems(400, 409, ...ENGINE_PROBLEMS),
  },
})

export function nodeRoutes() {
  const app = router()
  app.openapi(listRoute, async (c) => {
    const nodes = await listNodes(engineScope(c).client, c.req.raw.signal)
    return c.json({ nodes: nodes.map(toNode) }, 200)
  })
  return app
}
