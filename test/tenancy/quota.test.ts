/**
 * The container quota as tenants race it: parallel creates over real HTTP, counted on the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { engineContainerIds, testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { type ServedApp, serveApp } from '../support/reliability.ts'

const WORKER = ['containers:read', 'containers:write'] as const

let gw: TestGateway
let served: ServedApp

beforeAll(async () => {
  const policy = { images: ['*'], maxContainers: 3 }
  gw = await testGateway({
    clients: {
      racer: { scopes: [...WORKER], policy },
      neighbour: { scopes: [...WORKER], policy },
    },
  })
  served = await serveApp(gw.app)
})

afterAll(() => served.close())

/** A create over real HTTP as `client`, labelled with `probe` so the engine can count it. */
async function create(client: string, probe: string) {
  const response = await fetch(`${served.url}/v1/containers`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokenOf(client)}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      image: testEngineEnv().image,
      name: uniqueName('quota'),
      cmd: ['true'],
      labels: { [TEST_LABEL]: TEST_RUN, probe },
    }),
  })
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: (await response.json()) as { id?: string; detail?: string },
  }
}

describe('maxContainers under parallel creates', () => {
  it('10 at once with a limit of 3: exactly 3 on the engine, the rest 403, the neighbour unaffected', async () => {
    const racer = uniqueName('racer')
    const neighbour = uniqueName('neighbour')
    const answers = await Promise.all([
      ...Array.from({ length: 10 }, () => create('racer', racer)),
      ...Array.from({ length: 3 }, () => create('neighbour', neighbour)),
    ])
    const racers = answers.slice(0, 10)
    const created = racers.filter((a) => a.status === 201)
    const refused = racers.filter((a) => a.status === 403)
    expect(created).toHaveLength(3)
    expect(refused).toHaveLength(7)
    for (const answer of refused) {
      expect(answer.contentType).toBe('application/problem+json')
      expect(answer.body.detail).toMatch(/maximum is 3/)
    }
    // The engine holds exactly the three answered as created, nothing else.
    expect(await engineContainerIds(`probe=${racer}`)).toEqual(created.map((a) => a.body.id).sort())
    // Another tenant's quota is its own: its creates neither count nor wait against the racer's.
    expect(answers.slice(10).map((a) => a.status)).toEqual([201, 201, 201])
    expect(await engineContainerIds(`probe=${neighbour}`)).toHaveLength(3)
  })
})
