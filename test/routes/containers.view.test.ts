import { describe, expect, it } from 'vitest'
import { toListJson, toSummary } from '../../src/routes/containers.view.ts'
import { inspectOf } from '../support/inspect.ts'

const settings = { exposeEnvKeys: [], secretLabelPatterns: ['*token*'] }
const labels = { app: 'web', 'ci.TOKEN': 'hunter2' }

describe('the container list body', () => {
  it('is the JSON of the summaries, byte for byte, when answered again from what was kept', () => {
    const containers = [
      inspectOf('a', '2026-12-03T10:00:00Z', { labels, running: true }),
      inspectOf('b', '2026-12-03T09:00:00Z', { name: 'quote"and\\slash' }),
    ]
    const expected = JSON.stringify({ containers: containers.map((c) => toSummary(c, settings)) })
    expect(toListJson(containers, settings)).toBe(expected)
    expect(toListJson(containers, settings)).toBe(expected)
    expect(toListJson([], settings)).toBe('{"containers":[]}')
  })

  it('shows a container’s change: the read model’s new answer is a new summary', () => {
    const running = inspectOf('a', '2026-12-03T10:00:00Z', { running: true })
    expect(JSON.parse(toListJson([running], settings)).containers[0].state).toBe('running')
    const exited = inspectOf('a', '2026-12-03T10:00:00Z', { running: false })
    expect(JSON.parse(toListJson([exited], settings)).containers[0].state).toBe('exited')
  })

  it('redacts by the settings it is given, never by those a kept summary was made with', () => {
    const container = inspectOf('a', '2026-12-03T10:00:00Z', { labels })
    const labelsUnder = (patterns: string[]) =>
      JSON.parse(toListJson([container], { exposeEnvKeys: [], secretLabelPatterns: patterns }))
        .containers[0].labels
    expect(labelsUnder(['*token*'])).toEqual({ app: 'web', 'ci.TOKEN': null })
    expect(labelsUnder([])).toEqual(labels)
    expect(labelsUnder(['app'])).toEqual({ app: null, 'ci.TOKEN': 'hunter2' })
  })
})
