/**
 * @module Who owns which Swarm service, for the events stream.
 *
 * API 1.41's service events carry the service's id and name only, not its labels, while a
 * subscriber's filter must decide at once whether an event is its to see. So the gateway keeps
 * each service's labels as it learns them: before it asks the engine to create one (by name:
 * the engine's `create` event may come before the create's answer), and from every service it
 * answers about (a list, an inspect, a scale, its tasks or logs). A service it has not answered
 * about (created around it, or through another instance and not read here since) has its
 * events shown to admins only: never a stranger's event to anyone, at worst an owner's missed.
 * No subscription of its own: it adds nothing to the engine's or the hub's work.
 */
import type { EngineEvent } from '../events/event.ts'

type Labels = Readonly<Record<string, string>>

/** Services remembered at most; the oldest is forgotten first. */
const MAX_SERVICES = 10_000

export class ServiceOwners {
  readonly #byId = new Map<string, Labels>()
  readonly #byName = new Map<string, Labels>()

  /**
   * The labels of a service the gateway is about to create under this name, until its id is
   * known ({@link put}) or the create failed ({@link unexpect}): a name is only ever this
   * briefly a key, so a later service of the same name is never taken for this one.
   */
  expect(name: string, labels: Labels): void {
    remember(this.#byName, name, labels)
  }

  unexpect(name: string): void {
    this.#byName.delete(name)
  }

  put(id: string, name: string, labels: Labels): void {
    remember(this.#byId, id, labels)
    this.#byName.delete(name)
  }

  /**
   * The labels of a service event's service, when known. By name only for a `create` event: the
   * one event of a service that can come before its create's answer. Any other event named so is
   * of another service of that name (one this instance has not read: a stranger's, whose events
   * went to the creator while its create was under way, to fail with a 409).
   */
  labelsOf(event: EngineEvent): Labels | undefined {
    const byId = this.#byId.get(event.actor.id)
    if (byId) return byId
    if (event.action !== 'create' || !event.actor.name) return undefined
    return this.#byName.get(event.actor.name)
  }
}

function remember(map: Map<string, Labels>, key: string, labels: Labels): void {
  map.delete(key)
  map.set(key, labels)
  if (map.size > MAX_SERVICES) map.delete(map.keys().next().value!)
}
