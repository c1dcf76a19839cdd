/**
 * Who owns a Swarm service's events (`ServiceOwners`), as the events stream asks: by the
 * service's id once known, and by its name only for the `create` event of a create under way.
 */
import { describe, expect, it } from 'vitest'
import type { EngineEvent } from '../../src/events/event.ts'
import { ServiceOwners } from '../../src/model/services.ts'

const mine = { 'dockgate.owner': 'svc' }

const event = (action: string, id: string, name: string): EngineEvent => ({
  type: 'service',
  action,
  actor: { id, name, attributes: { name } },
  time: '2026-12-05T10:00:00.000000000Z',
  timeNano: '1796464800000000000',
})

describe('ServiceOwners', () => {
  it("takes a create under way's own create event by its name", () => {
    const owners = new ServiceOwners()
    owners.expect('web', mine)
    expect(owners.labelsOf(event('create', 'new-id', 'web'))).toBe(mine)
  })

  it("never takes another event of that name for it: a stranger's service of that name", () => {
    // A create of a name already taken (it will fail with a 409) while the service that holds
    // the name, unread by this instance, is updated or removed.
    const owners = new ServiceOwners()
    owners.expect('web', mine)
    for (const action of ['update', 'remove']) {
      expect(owners.labelsOf(event(action, 'strangers-id', 'web')), action).toBeUndefined()
    }
  })

  it('knows a service by its id once the create answered, for every event', () => {
    const owners = new ServiceOwners()
    owners.expect('web', mine)
    owners.put('new-id', 'web', mine)
    expect(owners.labelsOf(event('update', 'new-id', 'web'))).toBe(mine)
    // The name is no key any more: a later service of that name is not this one.
    expect(owners.labelsOf(event('create', 'later-id', 'web'))).toBeUndefined()
  })
})
