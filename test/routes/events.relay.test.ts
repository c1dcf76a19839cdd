/**
 * The events route's encoder (src/routes/events.relay.ts): what an event's `data` holds, what it
 * redacts, with the memo of secret keys it keeps, and after the patterns change (a config
 * reload). No engine involved.
 */
import { describe, expect, it } from 'vitest'
import { redactLabels, secretKeyMemo } from '../../src/domain/redaction.ts'
import type { EngineEvent } from '../../src/events/event.ts'
import { EventEncoder } from '../../src/routes/events.relay.ts'

const decoder = new TextDecoder()

function event(n: number, attributes: Record<string, string>): EngineEvent {
  return {
    type: 'container',
    action: 'start',
    actor: { id: `c${n}`, name: attributes.name ?? null, attributes },
    time: '2026-12-03T20:00:00.000000001Z',
    timeNano: `179600000000000000${n}`,
  }
}

/** The `data` line of the one event the encoder wrote, as sent. */
function sentText(encoder: EventEncoder, e: EngineEvent, patterns: readonly string[]) {
  const { chunk } = encoder.batch([{ kind: 'event', event: e }], 'default', () => true, {
    exposeEnvKeys: [],
    secretLabelPatterns: patterns,
  })
  const text = decoder.decode(chunk)
  return text.slice(text.indexOf('data: ') + 6, text.indexOf('\n', text.indexOf('data: ')))
}

function sent(encoder: EventEncoder, e: EngineEvent, patterns: readonly string[]) {
  return JSON.parse(sentText(encoder, e, patterns)) as {
    actor: { attributes: Record<string, string | null> }
  }
}

describe('EventEncoder', () => {
  it('sends every field of the event, in its order, with the engine named last', () => {
    const e = event(4, { name: 'web', 'db.password': 'hunter2' })
    expect(sentText(new EventEncoder(), e, ['*password*'])).toBe(
      JSON.stringify({
        type: 'container',
        action: 'start',
        actor: { id: 'c4', name: 'web', attributes: { name: 'web', 'db.password': null } },
        time: e.time,
        timeNano: e.timeNano,
        engine: 'default',
      }),
    )
  })

  it('redacts secret-looking attributes, and follows new patterns at once', () => {
    const encoder = new EventEncoder()
    const labels = { name: 'web', 'db.PASSWORD': 'hunter2', 'app.pin': '1234' }
    const first = ['*password*']
    expect(sent(encoder, event(1, labels), first).actor.attributes).toEqual({
      name: 'web',
      'db.PASSWORD': null,
      'app.pin': '1234',
    })
    // A reload: a new array of patterns; the keys judged before are judged again.
    const reloaded = ['*pin*']
    expect(sent(encoder, event(2, labels), reloaded).actor.attributes).toEqual({
      name: 'web',
      'db.PASSWORD': 'hunter2',
      'app.pin': null,
    })
    expect(sent(encoder, event(3, labels), first).actor.attributes['app.pin']).toBe('1234')
  })
})

describe('secretKeyMemo', () => {
  it('judges every key as redactLabels does, also past the keys it remembers', () => {
    const patterns = ['*secret*', '*api*key*', 'exact']
    const isSecret = secretKeyMemo(patterns)
    const keys = Array.from({ length: 2_500 }, (_, i) =>
      ['x', 'MY_SECRET', 'api.key', 'EXACT', 'exact.no'][i % 5]!.concat(i < 5 ? '' : `-${i}`),
    )
    for (const round of [1, 2]) {
      for (const key of keys) {
        const expected = redactLabels({ [key]: 'v' }, patterns)[key] === null
        expect(isSecret(key), `${key} (round ${round})`).toBe(expected)
      }
    }
  })
})
