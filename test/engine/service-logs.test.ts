import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { decodeServiceCursor } from '../../src/engine/service-log-cursor.ts'
import { followServiceLog, readServiceLogLines } from '../../src/engine/service-logs.ts'
import { type EngineService, inspectService } from '../../src/engine/services.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, testEngineEnv } from '../support/engine.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { removeServicesAfterAll, runningTasks, serviceName, workerHost } from '../support/swarm.ts'

let engine: EngineClient
let service: EngineService
const LINES = 30

beforeAll(async () => {
  workerHost()
  const transport = createNodeTransport(
    engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
  )
  afterAll(() => transport.close())
  engine = new EngineClient(transport)
  // By id: a task of an image named by reference first tries to pull it from its registry
  const image = (await direct(`/images/${testEngineEnv().image}/json`)).json() as { Id: string }
  const created = await direct('/services/create', {
    method: 'POST',
    body: {
      Name: serviceName('englogs'),
      Labels: { [TEST_LABEL]: TEST_RUN },
      TaskTemplate: {
        ContainerSpec: {
          Image: image.Id,
          Args: ['sh', '-c', `seq 1 ${LINES}; sleep 1000`],
        },
      },
      Mode: { Replicated: { Replicas: 2 } },
    },
  })
  const id = (created.json() as { ID: string }).ID
  await runningTasks(id, 2)
  service = await inspectService(engine, id)
  for (let i = 0; i < 40; i++) {
    const all = await readServiceLogLines(
      engine,
      service,
      {},
      { maxLines: 1e6, maxBytes: 1e9 },
      new AbortController().signal,
    )
    if (all.lines.length === 2 * LINES) break
    await new Promise((r) => setTimeout(r, 250))
  }
})
removeServicesAfterAll()

/** A sink that keeps the messages and hangs up after `count` of them. */
function collectingSink(count: number) {
  const controller = new AbortController()
  const events: { id: string; task: string; text: string }[] = []
  return {
    events,
    sink: {
      signal: controller.signal,
      async sendEncoded(chunk: Uint8Array) {
        for (const block of new TextDecoder().decode(chunk).split('\n\n')) {
          const id = /^id: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (!id || !data || events.length >= count) continue
          const { task, text } = JSON.parse(data)
          events.push({ id, task, text })
        }
        if (events.length >= count) controller.abort()
        return !controller.signal.aborted
      },
    },
  }
}

describe('service logs on the engine', () => {
  it('read at most the bound, and say so', async () => {
    const read = await readServiceLogLines(
      engine,
      service,
      { stderr: false },
      { maxLines: 10, maxBytes: 1e6 },
      new AbortController().signal,
    )
    expect(read.lines).toHaveLength(10)
    expect(read.truncated).toBe(true)
    const all = await readServiceLogLines(
      engine,
      service,
      {},
      { maxLines: 1e6, maxBytes: 1e9 },
      new AbortController().signal,
    )
    expect(all.truncated).toBe(false)
    expect(all.lines).toHaveLength(2 * LINES)
  })

  it('follow, and a follow from a cursor continues exactly after it', async () => {
    const first = collectingSink(17)
    expect(await followServiceLog(engine, service, {}, undefined, first.sink)).toBeUndefined()
    expect(first.events).toHaveLength(17)
    const cursor = decodeServiceCursor(first.events.at(-1)!.id)
    expect(cursor).toBeDefined()
    const rest = collectingSink(2 * LINES - 17)
    await followServiceLog(engine, service, {}, cursor, rest.sink)
    const byTask = new Map<string, string[]>()
    for (const e of [...first.events, ...rest.events]) {
      byTask.set(e.task, [...(byTask.get(e.task) ?? []), e.text])
    }
    expect([...byTask.values()]).toEqual([
      Array.from({ length: LINES }, (_, i) => String(i + 1)),
      Array.from({ length: LINES }, (_, i) => String(i + 1)),
    ])
  })
})
