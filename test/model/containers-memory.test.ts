import { describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { EventHub } from '../../src/events/hub.ts'
import { ContainerModel } from '../../src/model/containers.ts'
import { inspectOf } from '../support/inspect.ts'

/** A model never started: only what routes put into it, and no engine behind it. */
function unstartedModel() {
  const engine = new EngineClient({
    description: 'no engine (this test reads only what it put)',
    close: async () => {},
    fetch: () => Promise.reject(new Error('no engine in this test')),
  })
  return new ContainerModel(engine, new EventHub(engine))
}

const ids = (list: { Id: string }[]) => list.map((c) => c.Id)

describe('the container read model, answering from what it holds', () => {
  it('lists newest first whatever order containers are put, changed and removed in', () => {
    const model = unstartedModel()
    model.put(inspectOf('b', '2026-12-03T10:00:00.000000002Z'))
    model.put(inspectOf('c', '2026-12-03T09:00:00Z'))
    model.put(inspectOf('a', '2026-12-03T10:00:00.000000003Z'))
    model.put(inspectOf('d', '2026-12-03T11:00:00Z'))
    model.put(inspectOf('b', '2026-12-03T10:00:00.000000002Z', { running: true }))
    model.remove('d')
    expect(ids(model.list({ all: true }))).toEqual(['a', 'b', 'c'])
    expect(ids(model.list({}))).toEqual(['b'])
    model.put(inspectOf('e', '2026-12-03T09:30:00Z'))
    expect(ids(model.list({ all: true }))).toEqual(['a', 'b', 'e', 'c'])
    expect(ids(model.list({ limit: 2 }))).toEqual(['a', 'b'])
  })

  it('counts a limit over the containers the caller may see, and the filters, not over all', () => {
    const model = unstartedModel()
    for (let i = 0; i < 6; i++) {
      const owner = i % 2 === 0 ? 'alice' : 'bob'
      model.put(inspectOf(`c${i}`, `2026-12-03T10:00:0${i}Z`, { labels: { owner, n: String(i) } }))
    }
    const alice = (labels: Readonly<Record<string, string>>) => labels.owner === 'alice'
    expect(ids(model.list({ limit: 2 }, alice))).toEqual(['c4', 'c2'])
    expect(ids(model.list({ limit: 2, label: ['n'] }, alice))).toEqual(['c4', 'c2'])
    expect(ids(model.list({ all: true, label: ['n=3'] }, alice))).toEqual([])
    expect(ids(model.list({ all: true, label: ['owner=bob'] }))).toEqual(['c5', 'c3', 'c1'])
    expect(ids(model.list({ all: true, name: '^/c[12]$' }))).toEqual(['c2', 'c1'])
  })
})
